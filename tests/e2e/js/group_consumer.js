// kafkajs group consumer with manual commits, for test_groups.py.
// Usage: node group_consumer.js '<json>' with
//   {"brokers": [...], "topic": t, "groupId": g, "count": n, "timeoutMs": ms}
// Consumes until `count` messages were processed, committing each message's
// offset + 1 after processing it (autoCommit off), then disconnects (leaving
// the group). Prints {"messages": [{partition, offset, value}]}.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const command = JSON.parse(process.argv[2]);
  const kafka = new Kafka({
    clientId: 'holdfast-e2e-kafkajs-group',
    brokers: command.brokers,
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevel.WARN,
  });
  const consumer = kafka.consumer({
    groupId: command.groupId,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: command.topic, fromBeginning: true });
  const messages = [];
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  const timer = setTimeout(resolveDone, command.timeoutMs || 30000);
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      if (messages.length >= command.count) return;
      messages.push({ partition, offset: Number(message.offset), value: message.value.toString() });
      await consumer.commitOffsets([
        { topic, partition, offset: (BigInt(message.offset) + 1n).toString() },
      ]);
      if (messages.length >= command.count) resolveDone();
    },
  });
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  process.stdout.write(JSON.stringify({ messages }) + '\n', () => process.exit(0));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: e.message, name: e.name }) + '\n');
  process.exit(1);
});
