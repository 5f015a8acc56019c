import { makeServiceAccount, startFakeFcm } from '../tests/helpers/fake-fcm.js';

/**
 * The local FCM of bench/notifications.ts, in a process of its own so that its work is not
 * counted in Parley's: prints one JSON line with its address and service account, then one line
 * per push it receives ({ token, notificationId, receivedAt }).
 */
const account = makeServiceAccount('parley-bench');
const fake = await startFakeFcm({ accounts: [account] });
const emit = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
emit({ url: fake.url, tokenUrl: fake.tokenUrl, projectId: account.projectId, clientEmail: account.clientEmail, privateKey: account.privateKey });
let reported = 0;
// Report what arrived every few milliseconds: a line per push as it comes would cost the fake more than FCM's answer.
setInterval(() => {
  const fresh = fake.received.slice(reported);
  reported += fresh.length;
  for (const push of fresh) emit({ token: push.token, notificationId: push.message.data?.notificationId, receivedAt: push.receivedAt });
}, 5);
process.on('SIGTERM', () => void fake.close().then(() => process.exit(0)));
