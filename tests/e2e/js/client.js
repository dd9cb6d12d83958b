// kafkajs driver for the end-to-end tests. Usage: node client.js '<json command>'
// Prints one JSON line on stdout: the result, or {"error": ..., "name": ...}
// with exit code 1. kafkajs' own log goes to stderr.
//
// Commands:
//   {"action": "produce", "brokers": [...], "topic": t, "acks": -1|0|1,
//    "compression": "none"|"gzip"|"snappy", "batches": [[{key, value, headers, partition, timestamp}]]}
//      -> {"results": [[{partition, baseOffset}], ...]}   (one entry per batch)
//      optional "pauseMs": wait that long after each batch
//   {"action": "consume", "brokers": [...], "topic": t, "groupId": g, "count": n,
//    "fromBeginning": true, "timeoutMs": ms}
//      -> {"messages": [{partition, offset, key, value, headers, timestamp}]}
//   {"action": "admin", "brokers": [...], "calls": [{"method": m, "args": [...]}]}
//      -> {"results": [...]}  (admin[m](...args) for each call, in order)
//   {"action": "transactions", "brokers": [...], "topic": t, "transactionalId": id,
//    "groupId": g, "steps": [{"messages": [{value, partition}], "offsets": [{partition, offset}],
//    "end": "commit"|"abort"}]}
//      -> {"results": [{"end": ..., "sent": [{partition, baseOffset}]}]}  one transaction per step;
//         "offsets" go to the transaction with sendOffsets for groupId on topic
// Any command may carry "sasl" (kafkajs' sasl option) and "ssl": {"ca": file,
// "cert": file, "key": file} (PEM files; only "ca" is needed for server TLS).
'use strict';

const fs = require('fs');

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
};

const stderrLogCreator = () => ({ namespace, level, label, log }) => {
  process.stderr.write(`kafkajs ${label} ${namespace}: ${log.message} ${JSON.stringify(log)}\n`);
};

function tlsOptions(ssl) {
  const options = { rejectUnauthorized: true, ca: [fs.readFileSync(ssl.ca, 'utf8')] };
  if (ssl.cert) options.cert = fs.readFileSync(ssl.cert, 'utf8');
  if (ssl.key) options.key = fs.readFileSync(ssl.key, 'utf8');
  return options;
}

function makeKafka(command) {
  return new Kafka({
    clientId: 'holdfast-e2e-kafkajs',
    brokers: command.brokers,
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
    ...(command.sasl ? { sasl: command.sasl } : {}),
    ...(command.ssl ? { ssl: tlsOptions(command.ssl) } : {}),
  });
}

const text = (buffer) => (buffer === null || buffer === undefined ? null : buffer.toString('utf8'));

async function produce(command) {
  const producer = makeKafka(command).producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const results = [];
  try {
    for (const batch of command.batches) {
      const metadata = await producer.send({
        topic: command.topic,
        acks: command.acks === undefined ? -1 : command.acks,
        compression: COMPRESSION[command.compression || 'none'],
        messages: batch.map((m) => ({
          key: m.key === undefined ? null : m.key,
          value: m.value,
          headers: m.headers || {},
          partition: m.partition,
          timestamp: m.timestamp === undefined ? undefined : String(m.timestamp),
        })),
      });
      results.push(metadata.map((r) => ({ partition: r.partition, baseOffset: r.baseOffset, errorCode: r.errorCode })));
      // Spreads the batches over time (a session that must outlive a SASL lifetime).
      if (command.pauseMs) await new Promise((resolve) => setTimeout(resolve, command.pauseMs));
    }
  } finally {
    await producer.disconnect();
  }
  return { results };
}

async function consume(command) {
  const consumer = makeKafka(command).consumer({
    groupId: command.groupId,
    maxWaitTimeInMs: 500,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
  });
  const messages = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [command.topic], fromBeginning: command.fromBeginning !== false });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, command.timeoutMs || 20000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const headers = {};
            for (const [k, v] of Object.entries(message.headers || {})) headers[k] = text(v);
            messages.push({
              partition,
              offset: Number(message.offset),
              key: text(message.key),
              value: text(message.value),
              headers,
              timestamp: Number(message.timestamp),
            });
            if (messages.length >= command.count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return { messages };
}

async function transactions(command) {
  const producer = makeKafka(command).producer({
    transactionalId: command.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const results = [];
  try {
    for (const step of command.steps) {
      const txn = await producer.transaction();
      const sent = [];
      for (const m of step.messages || []) {
        const metadata = await txn.send({ topic: command.topic, acks: -1,
                                          messages: [{ value: m.value, partition: m.partition }] });
        sent.push(...metadata.map((r) => ({ partition: r.partition, baseOffset: r.baseOffset })));
      }
      if (step.offsets) {
        await txn.sendOffsets({
          consumerGroupId: command.groupId,
          topics: [{ topic: command.topic,
                     partitions: step.offsets.map((o) => ({ partition: o.partition, offset: String(o.offset) })) }],
        });
      }
      if (step.end === 'commit') await txn.commit(); else await txn.abort();
      results.push({ end: step.end, sent });
    }
  } finally {
    await producer.disconnect();
  }
  return { results };
}

async function admin(command) {
  const client = makeKafka(command).admin();
  await client.connect();
  const results = [];
  try {
    for (const call of command.calls) {
      const value = await client[call.method](...(call.args || []));
      results.push(value === undefined ? null : value);
    }
  } finally {
    await client.disconnect();
  }
  return { results };
}

async function main() {
  const command = JSON.parse(process.argv[2]);
  const actions = { produce, consume, admin, transactions };
  const deadline = setTimeout(() => {
    process.stdout.write(JSON.stringify({ error: 'driver deadline exceeded', name: 'Timeout' }) + '\n');
    process.exit(1);
  }, command.deadlineMs || 60000);
  const result = await actions[command.action](command);
  clearTimeout(deadline);
  // Exit once written: a leftover kafkajs timer must not keep node alive.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String(error.message || error), name: error.name, type: error.type }) + '\n');
  process.exit(1);
});
