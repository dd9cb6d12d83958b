// kafkajs idempotent producer for tests/e2e/test_idempotence.py.
// Usage: node idempotent_producer.js '<json>' with
//   {"brokers": [...], "topic": t, "partitions": n, "perPartition": m, "batchSize": b,
//    "idempotent": true, "deadlineMs": ms, "pauseMs": ms between sends}
// One sequential send loop per partition, all loops concurrently on one
// producer (so requests for different partitions are pipelined on the
// connection, up to maxInFlightRequests = 5). kafkajs 2.2.4 takes a batch's
// first sequence when it sends and advances it on the response, so two sends
// in flight to the SAME partition would share a sequence: one loop per
// partition keeps that correct.
// Prints one JSON line: {"acked": [{"partition", "offset", "value"}], "failed": n, "errors": [...]}
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const command = JSON.parse(process.argv[2]);
  const kafka = new Kafka({
    clientId: 'holdfast-e2e-idempotence',
    brokers: command.brokers,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  });
  const makeProducer = () =>
    kafka.producer({
      idempotent: command.idempotent,
      maxInFlightRequests: 5,
      allowAutoTopicCreation: false,
      retry: command.idempotent
        ? { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 }
        : { retries: 1000, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  const producer = makeProducer();
  const extra = [];
  await producer.connect();
  const acked = [];
  const errors = [];
  let failed = 0;
  const deadline = Date.now() + command.deadlineMs;

  async function loop(partition) {
    let current = producer;
    for (let i = 0; i < command.perPartition && Date.now() < deadline; i += command.batchSize) {
      const values = [];
      for (let j = i; j < Math.min(i + command.batchSize, command.perPartition); ++j) {
        values.push(`p${partition}-${String(j).padStart(6, '0')}`);
      }
      try {
        const result = await current.send({
          topic: command.topic,
          acks: -1,
          messages: values.map((value) => ({ value, partition })),
        });
        const base = Number(result[0].baseOffset);
        if (command.pauseMs) await new Promise((resolve) => setTimeout(resolve, command.pauseMs));
        values.forEach((value, k) => acked.push({ partition, offset: base + k, value }));
      } catch (error) {
        // kafkajs gives up on some connection errors ("Broker not connected").
        // After a failed send its sequence for the partition is unknown, so
        // this partition continues on a NEW producer (a new producer id):
        // these messages count as failed (maybe written, never twice).
        failed += values.length;
        errors.push(`${error.name}: ${error.message}`);
        current = makeProducer();
        extra.push(current);
        for (;;) {
          try {
            await current.connect();
            break;
          } catch (e) {
            if (Date.now() > deadline) return;
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
        }
      }
    }
  }

  await Promise.all(Array.from({ length: command.partitions }, (_, p) => loop(p)));
  for (const p of [producer, ...extra]) await p.disconnect().catch(() => {});
  // Exit once the report is written: a kafkajs client cut off by the proxy
  // can leave a reconnect timer behind that keeps node alive after
  // disconnect() (CI saw the full report printed and then a 50 s hang).
  process.stdout.write(JSON.stringify({ acked, failed, errors }) + '\n', () => process.exit(0));
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String(error), name: error.name }) + '\n');
  process.exit(1);
});
