import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { makeServiceAccount, startFakeFcm, type FakeFcm } from './helpers/fake-fcm.js';
import { until } from './helpers/wait.js';

let fake: FakeFcm;
const apps: TestApp[] = [];
const account = makeServiceAccount();
const env = () => ({
  FIREBASE_PROJECT_ID: account.projectId,
  FIREBASE_CLIENT_EMAIL: account.clientEmail,
  FIREBASE_PRIVATE_KEY: account.privateKey,
  FCM_API_URL: fake.url,
  FIREBASE_TOKEN_URL: fake.tokenUrl,
  // an abandoned job goes back to the queue this soon
  JOBS_STALLED_TIMEOUT: '2s',
});

beforeAll(async () => {
  fake = await startFakeFcm({ accounts: [account] });
});
afterAll(async () => {
  for (const t of apps) await t.close();
  await fake.close();
});

const USERS = 3000;

it('sends nobody a broadcast twice when the worker running it stops midway and another takes over', async () => {
  const first = await buildTestApp({ env: env() });
  const db = first.container.db;
  // the audience, written straight to the tables: signing up 3,000 users would be the slow part
  const ids = Array.from({ length: USERS }, () => randomUUID());
  await db.query(
    `INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
     SELECT id, 'broadcast-' || id || '@parley.test', NULL, 'student', now(), now() FROM unnest($1::uuid[]) AS id`,
    [ids],
  );
  await db.query('INSERT INTO profiles (user_id, created_at, updated_at) SELECT id, now(), now() FROM unnest($1::uuid[]) AS id', [ids]);
  await db.query(
    `INSERT INTO device_tokens (id, user_id, device_id, platform, fcm_token, created_at, updated_at)
     SELECT gen_random_uuid(), id, 'phone', 'android', 'fcm-broadcast-' || id, now(), now() FROM unnest($1::uuid[]) AS id`,
    [ids],
  );
  const [adminId] = ids;

  await first.container.services.notifications.broadcast(adminId!, { title: 'Maintenance tonight', body: 'Back at 02:00', audience: { kind: 'all' } });
  await until(() => fake.received.length >= 300, { timeoutMs: 30_000, message: 'the first pushes went out' });
  // stops at once: the running jobs are abandoned (they stop sending, record what they sent), the process goes
  await first.container.jobs.runtime.stop(0);
  const sentByFirst = fake.received.length;
  await first.close();
  expect(sentByFirst).toBeLessThan(USERS);

  const second = await buildTestApp({ env: env() });
  apps.push(second);
  const tokens = () => new Set(fake.received.map((push) => push.token));
  await until(() => tokens().size === USERS, { timeoutMs: 90_000, message: `every user got the broadcast (${tokens().size} so far)` });

  const perToken = new Map<string, number>();
  for (const push of fake.received) perToken.set(push.token, (perToken.get(push.token) ?? 0) + 1);
  const twice = [...perToken].filter(([, count]) => count > 1);
  expect(twice).toEqual([]);
  // every delivery recorded as sent, once
  const counts = await until(
    async () => {
      const [row] = await second.container.db.query<Array<{ sent: number; total: number }>>(
        "SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent, count(*)::int AS total FROM notification_deliveries WHERE channel = 'push'",
      );
      return row!.sent === USERS ? row : null;
    },
    { timeoutMs: 30_000, message: 'every delivery recorded' },
  );
  expect(counts).toEqual({ sent: USERS, total: USERS });
});
