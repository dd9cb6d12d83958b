"""A consume-transform-produce copier for the exactly-once test (run as a
child process by test_exactly_once.py): confluent-kafka, a member of a
consumer group (static membership, `group.instance.id`, so a restarted copier
takes its predecessor's place at once instead of waiting out its session).

It copies every message of --input (all partitions) to --output, the value
prefixed with "copy:", in batches of --batch messages:

  --mode txn    one transaction per batch: produce the copies, send the
                consumer's next offsets with send_offsets_to_transaction,
                commit_transaction. A restart with the same transactional.id
                fences the previous incarnation and aborts what it left open.
  --mode plain  the at-least-once way (the control): produce the copies,
                flush, then commit the offsets synchronously.

--crash-after N: after N batches were finished, the next batch is produced
(and flushed) but the process exits with os._exit(9) before its offsets are
committed (txn: before commit_transaction), like a SIGKILL at the worst
moment. The test also SIGKILLs it at random moments.

It exits 0 with {"done": copied} on stdout once its position reached the end
offsets that --input had when it started, 3 on a deadline.
"""
import argparse
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--mode", choices=["txn", "plain"], required=True)
    ap.add_argument("--transactional-id", default="eos-copier")
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--crash-after", type=int, default=-1)
    ap.add_argument("--deadline", type=float, default=60)
    args = ap.parse_args()
    deadline = time.monotonic() + args.deadline

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "group.instance.id": "copier", "session.timeout.ms": 10000,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    pconf = {"bootstrap.servers": args.bootstrap, "enable.idempotence": True,
             "linger.ms": 5, "message.timeout.ms": 30000}
    if args.mode == "txn":
        pconf.update({"transactional.id": args.transactional_id,
                      "transaction.timeout.ms": 60000})
    producer = Producer(pconf)
    if args.mode == "txn":
        producer.init_transactions(30)

    partitions = [TopicPartition(args.input, p) for p in range(args.partitions)]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
    # The group resumes from its committed offsets (the beginning when none);
    # `position` only decides when the copy is complete.
    committed = consumer.committed(partitions, timeout=10)
    position = {tp.partition: max(tp.offset, 0) for tp in committed}
    consumer.subscribe([args.input])

    batches = 0
    copied = 0
    while any(position[p] < ends[p] for p in ends):
        if time.monotonic() > deadline:
            print(json.dumps({"error": "deadline", "position": position, "ends": ends}))
            sys.stdout.flush()
            os._exit(3)
        messages = consumer.consume(args.batch, 0.5)
        messages = [m for m in messages if not m.error()]
        if not messages:
            continue
        if args.mode == "txn":
            producer.begin_transaction()
        for m in messages:
            producer.produce(args.output, value=b"copy:" + m.value(), partition=m.partition())
            position[m.partition()] = m.offset() + 1
        offsets = [TopicPartition(args.input, p, o) for p, o in position.items()]
        if batches == args.crash_after:
            # The copies are out (flushed), the offsets are not committed.
            remaining = producer.flush(30)
            assert remaining == 0, f"{remaining} messages not delivered before the crash"
            os._exit(9)
        if args.mode == "txn":
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        else:
            remaining = producer.flush(30)
            assert remaining == 0, f"{remaining} messages not delivered"
            consumer.commit(offsets=offsets, asynchronous=False)
        batches += 1
        copied += len(messages)
    print(json.dumps({"done": copied}))
    sys.stdout.flush()
    consumer.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        # A fenced or timed-out incarnation: the test restarts the copier.
        print(json.dumps({"error": str(e)}))
        sys.stdout.flush()
        os._exit(4)
