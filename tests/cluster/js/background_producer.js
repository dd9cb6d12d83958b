// kafkajs idempotent acks=all producer for the cluster fault scenarios
// (tests/cluster/workloads.py). kafkajs comes from tests/e2e/js/node_modules
// (NODE_PATH). Usage: node background_producer.js '<json>' with
//   {"brokers": [...], "topic": t, "partition": p, "prefix": s, "batchSize": b,
//    "pauseMs": ms, "maxMessages": n, "deadlineMs": ms, "resultPath": file}
// One sequential send loop (kafkajs 2.2.4 must not have two idempotent sends
// to one partition in flight) until SIGTERM, `maxMessages` or `deadlineMs`.
// A send that fails leaves the sequence unknown: the loop continues on a NEW
// producer (new producer id) and counts those values as failed (maybe in the
// log, never acknowledged, never sent again). Writes progress lines
// {"acked": n} to stderr and, at the end, writes `resultPath` (a pipe would
// be cut short by process.exit):
// {"acked": [[value, partition, offset], ...], "failed": n, "errors": [...]}
'use strict';

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const command = JSON.parse(process.argv[2]);
  const kafka = new Kafka({
    clientId: 'holdfast-cluster-kafkajs',
    brokers: command.brokers,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  });
  const makeProducer = () =>
    kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  const deadline = Date.now() + command.deadlineMs;
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; });
  const producers = [];
  const connect = async () => {
    const p = makeProducer();
    producers.push(p);
    while (!stopping && Date.now() < deadline) {
      try {
        await p.connect();
        return p;
      } catch (e) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    return null;
  };
  const acked = [];
  const errors = [];
  let failed = 0;
  let sent = 0;
  let current = await connect();
  while (current && !stopping && sent < command.maxMessages && Date.now() < deadline) {
    const values = [];
    for (let j = 0; j < command.batchSize; ++j) values.push(`${command.prefix}-${sent + j}`);
    sent += values.length;
    try {
      const result = await current.send({
        topic: command.topic,
        acks: -1,
        messages: values.map((value) => ({ value, partition: command.partition })),
      });
      const base = Number(result[0].baseOffset);
      values.forEach((value, k) => acked.push([value, command.partition, base + k]));
      process.stderr.write(JSON.stringify({ acked: acked.length }) + '\n');
    } catch (error) {
      failed += values.length;
      errors.push(`${error.name}: ${error.message}`);
      current = await connect();
    }
    if (command.pauseMs) await new Promise((resolve) => setTimeout(resolve, command.pauseMs));
  }
  fs.writeFileSync(command.resultPath, JSON.stringify({ acked, failed, errors: errors.slice(-20) }));
  await Promise.race([
    Promise.allSettled(producers.map((p) => p.disconnect())),
    new Promise((resolve) => setTimeout(resolve, 5000)),
  ]);
  process.exit(0);
}

main().catch((e) => {
  fs.writeFileSync(JSON.parse(process.argv[2]).resultPath,
                   JSON.stringify({ fatal: `${e.name}: ${e.message}` }));
  process.exit(1);
});
