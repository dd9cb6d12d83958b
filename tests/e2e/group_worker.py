"""A consumer-group member for the at-least-once end-to-end tests (run as a
child process by test_groups.py): confluent-kafka, manual commit after
processing.

Every event goes to the output file as one JSON line, flushed at once:
  {"ev": "assigned", "partitions": [...]}            (incremental for cooperative)
  {"ev": "msg", "p": partition, "o": offset, "v": value}   processed
  {"ev": "commit", "offsets": {partition: next offset}}     a commit that succeeded
  {"ev": "dying"}                                     --die-after reached: waits to be killed

Commits: every --commit-every messages, and for revoked partitions before
giving them up (on_revoke), so that only a member that dies leaves processed
but uncommitted messages behind. SIGTERM: commit and close.
"""
import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--strategy", default="range")
    ap.add_argument("--commit-every", type=int, default=10)
    ap.add_argument("--die-after", type=int, default=0, help="0: never")
    ap.add_argument("--uncommitted", type=int, default=7,
                    help="messages processed after the last commit before dying")
    args = ap.parse_args()

    out = open(args.out, "a", buffering=1)

    def emit(**event):
        out.write(json.dumps(event) + "\n")
        out.flush()

    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))

    processed = {}  # partition -> next offset to commit
    committed = {}

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": args.strategy,
        "topic.metadata.refresh.interval.ms": 2000,
    })

    def commit_now(only=None):
        tps = [TopicPartition(args.topic, p, o) for p, o in processed.items()
               if (only is None or p in only) and committed.get(p) != o]
        if not tps:
            return
        consumer.commit(offsets=tps, asynchronous=False)
        for tp in tps:
            committed[tp.partition] = tp.offset
        emit(ev="commit", offsets={tp.partition: tp.offset for tp in tps})

    def on_assign(c, partitions):
        emit(ev="assigned", partitions=[p.partition for p in partitions])

    def on_revoke(c, partitions):
        revoked = {p.partition for p in partitions}
        try:
            commit_now(revoked)
        except KafkaException as e:
            emit(ev="commit-failed", error=str(e))
        for p in revoked:
            processed.pop(p, None)
            committed.pop(p, None)
        emit(ev="revoked", partitions=sorted(revoked))

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    count = 0
    dying_at = None
    while not stop["flag"]:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            emit(ev="error", error=str(msg.error()))
            continue
        emit(ev="msg", p=msg.partition(), o=msg.offset(), v=msg.value().decode())
        processed[msg.partition()] = msg.offset() + 1
        count += 1
        if dying_at is not None and count >= dying_at:
            emit(ev="dying")
            while True:  # processed, never committed: wait for SIGKILL
                time.sleep(1)
        if count % args.commit_every == 0:
            try:
                commit_now()
            except KafkaException as e:
                emit(ev="commit-failed", error=str(e))
            if args.die_after and count >= args.die_after and dying_at is None:
                dying_at = count + args.uncommitted
    try:
        commit_now()
    except KafkaException as e:
        emit(ev="commit-failed", error=str(e))
    consumer.close()
    emit(ev="closed")


if __name__ == "__main__":
    sys.exit(main())
