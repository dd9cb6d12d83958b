"""A transactional producer for test_txn_power_loss.py (a child process):
confluent-kafka, one transaction after another, each writing --per-txn
messages "t<number>-<k>" spread over the topic's partitions.

Lines on stdout, flushed at once:
  {"begin": n}       before transaction n's first message
  {"committed": n}   commit_transaction(n) returned: acknowledged
  {"error": "..."}   a failure; the process exits 4 (the test starts another
                     producer with the same transactional.id, which fences
                     this one and aborts what it left open)
Exits 0 after --count transactions, 3 past --deadline seconds.
"""
import argparse
import json
import sys
import time

from confluent_kafka import KafkaException, Producer


def say(**kv):
    print(json.dumps(kv))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--transactional-id", required=True)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--per-txn", type=int, default=6)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--deadline", type=float, default=60)
    args = ap.parse_args()
    deadline = time.monotonic() + args.deadline
    p = Producer({"bootstrap.servers": args.bootstrap, "transactional.id": args.transactional_id,
                  "transaction.timeout.ms": 20000, "message.timeout.ms": 15000,
                  "socket.timeout.ms": 3000, "linger.ms": 2})
    try:
        p.init_transactions(30)
        for n in range(args.first, args.first + args.count):
            if time.monotonic() > deadline:
                return 3
            say(begin=n)
            p.begin_transaction()
            for k in range(args.per_txn):
                p.produce(args.topic, value=f"t{n:05d}-{k}".encode(), partition=k % args.partitions)
            p.commit_transaction(30)
            say(committed=n)
    except KafkaException as e:
        say(error=str(e))
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
