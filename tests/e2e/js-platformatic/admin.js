// @platformatic/kafka admin driver for the end-to-end tests.
// Usage: node admin.js '<json command>'. Prints one JSON line on stdout: the
// result, or {"error": ..., "name": ...} with exit code 1.
//
// Commands:
//   {"action": "incrementalAlterConfigs", "brokers": [...], "validateOnly": bool,
//    "resources": [{"resourceType": 2, "resourceName": t,
//                   "configs": [{"name": k, "configOperation": 0..3, "value": v|null}]}]}
//      -> {"ok": true}
// Admin.incrementalAlterConfigs sends IncrementalAlterConfigs (API 44, v1).
import { Admin } from '@platformatic/kafka';

const command = JSON.parse(process.argv[2]);

function describe(error) {
  const causes = (error.errors || []).map(describe);
  return [error.message, ...causes].join(' / ');
}

async function main() {
  const admin = new Admin({
    clientId: 'holdfast-e2e-platformatic',
    bootstrapBrokers: command.brokers,
    timeout: 15000,
    retries: 2,
  });
  try {
    if (command.action === 'incrementalAlterConfigs') {
      await admin.incrementalAlterConfigs({
        resources: command.resources,
        validateOnly: command.validateOnly ?? false,
      });
      return { ok: true };
    }
    throw new Error(`unknown action ${command.action}`);
  } finally {
    await admin.close();
  }
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  },
  (error) => {
    process.stdout.write(JSON.stringify({ error: describe(error), name: error.name }) + '\n');
    process.exit(1);
  },
);
