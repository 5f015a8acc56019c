import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTestApp, testDatabaseUrl, testEnv, type TestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin } from './helpers/payments.js';
import { repoRoot, run, type Spawned } from './helpers/spawn.js';

/**
 * The process that applies a provider's event dies after Parley answered the provider 200:
 * the event is in the inbox, so the next worker applies it, once.
 */
let t: TestApp;
const children: Spawned[] = [];
beforeAll(async () => {
  // this process only takes HTTP requests: the events are applied by the worker processes below
  t = await buildTestApp({ env: { WORKERS: 'off', JOBS_STALLED_TIMEOUT: '1500ms' } });
});
afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
  await t.close();
});

/** `npm run worker`, built: a process that runs the jobs and serves no HTTP. */
async function startWorkerProcess(): Promise<Spawned> {
  const env = await testEnv({ LOG_LEVEL: 'warn', JOBS_STALLED_TIMEOUT: '1500ms' });
  const spawned = run(process.execPath, [path.join(repoRoot, 'dist/src/worker.js')], {
    cwd: mkdtempSync(path.join(os.tmpdir(), 'parley-worker-')),
    env: Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined)),
  });
  children.push(spawned);
  return spawned;
}

it('applies a paid event once, in the next worker, when the worker applying it is killed -9', { timeout: 120_000 }, async () => {
  const admin = await registerAdmin(t);
  const buyer = await register(t.app);
  const course = await createCourse(t.app, admin);
  const { orderId, url } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();

  // Hold the order's row: the first worker's transaction will wait on it, mid-way through the event.
  const holder = new pg.Client({ connectionString: await testDatabaseUrl() });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [orderId]);
  try {
    const paid = await t.app.inject({
      method: 'POST',
      url: `${new URL(url).pathname}/complete`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: '',
    });
    expect(paid.statusCode).toBe(200);
    expect((await holder.query(`SELECT status FROM payment_webhook_events`)).rows).toEqual([{ status: 'received' }]);

    const first = await startWorkerProcess();
    // the worker has claimed the event and its transaction waits for the order's lock (asked from
    // outside the holder's transaction, whose view of pg_stat_activity is frozen at its first read)
    await eventually(
      async () =>
        (
          await t.container.db.query<Array<{ n: number }>>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM orders%FOR UPDATE%'`,
          )
        )[0]!.n,
      (waiting) => waiting >= 1,
      60_000,
    );
    first.child.kill('SIGKILL');
    expect(await first.exit).toBeNull();
  } finally {
    await holder.query('ROLLBACK');
    await holder.end();
  }
  expect((await order(t.app, buyer, orderId)).status).toBe('pending');

  const second = await startWorkerProcess();
  await eventually(
    () => order(t.app, buyer, orderId),
    (o) => o.status === 'paid',
    60_000,
  );
  const db = t.container.db;
  await eventually(
    async () => (await db.query<Array<{ status: string; attempts: number }>>(`SELECT status, attempts FROM payment_webhook_events`))[0],
    (event) => event?.status === 'processed',
    30_000,
  );
  expect(await db.query(`SELECT count(*)::int AS n FROM enrollments WHERE user_id = $1 AND revoked_at IS NULL`, [buyer.user.id])).toEqual([{ n: 1 }]);
  expect(await db.query(`SELECT count(*)::int AS n FROM notifications WHERE user_id = $1 AND type = 'payment_success'`, [buyer.user.id])).toEqual([{ n: 1 }]);
  const [event] = await db.query<Array<{ attempts: number }>>(`SELECT attempts FROM payment_webhook_events`);
  expect(event!.attempts).toBe(2);
  second.child.kill('SIGTERM');
  expect(await second.exit).toBe(0);
});
