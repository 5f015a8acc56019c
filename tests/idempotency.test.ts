import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { injectAs, login, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { idempotency, requestHash } from '../src/http/idempotency/plugin.js';

const DAY = 24 * 60 * 60 * 1000;
const clock = manualClock();
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

const report = (token: string, payload: object, key?: string) =>
  injectAs(t.app, token, { method: 'POST', url: '/reports', headers: key === undefined ? {} : { 'idempotency-key': key }, payload });

async function reportsBy(reporterId: string): Promise<string[]> {
  const rows = await t.container.db.query<Array<{ id: string }>>('SELECT id FROM reports WHERE reporter_id = $1 ORDER BY created_at', [reporterId]);
  return rows.map((row) => row.id);
}

async function keyRows(key: string): Promise<Array<{ user_id: string; state: string; response_status: number | null }>> {
  return t.container.db.query('SELECT user_id, state, response_status FROM idempotency_keys WHERE key = $1', [key]);
}

/** Polls `check` every 20 ms for at most 5 s. */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not reached within 5 s');
}

/** Backends of this test database waiting on a lock (the PostgreSQL server is shared with other suites). */
async function waitingOnLocks(): Promise<number> {
  const [{ waiting }] = await t.container.db.query<[{ waiting: number }]>(
    "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
  );
  return waiting;
}

/** A reporter and the user they report. */
async function pair(): Promise<{ reporter: Pair & { email: string }; target: Pair }> {
  return { reporter: await register(t.app), target: await register(t.app) };
}

describe('Idempotency-Key on POST /reports', () => {
  it('replays the first response to a retry with the same body: one report, the same id, Idempotent-Replayed', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam', description: 'the same words' };
    const first = await report(reporter.accessToken, body, key);
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // the same request with its fields in another order is the same request
    const again = await report(reporter.accessToken, { description: 'the same words', reason: 'spam', reportedId: target.user.id }, key);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    expect(again.json()).toEqual(first.json());
    expect(await reportsBy(reporter.user.id)).toEqual([first.json().id]);
  });

  it('answers 422 idempotency_key_reused to the key with a different body, and creates nothing', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    expect((await report(reporter.accessToken, { reportedId: target.user.id, reason: 'spam' }, key)).statusCode).toBe(201);
    const other = await report(reporter.accessToken, { reportedId: target.user.id, reason: 'harassment' }, key);
    expect(other.statusCode).toBe(422);
    expect(other.json().error.code).toBe('idempotency_key_reused');
    expect(await reportsBy(reporter.user.id)).toHaveLength(1);
  });

  it('answers a duplicate sent while the first still runs with 409 idempotency_in_progress; the first then completes', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam' };
    // the reported user's row lock, which every new report about them takes: the request that
    // claims the key waits on it until this transaction ends
    const holder = new pg.Client({ connectionString: await testDatabaseUrl() });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE', [target.user.id]);
      const requests = [report(reporter.accessToken, body, key), report(reporter.accessToken, body, key)];
      let answered = false;
      const first = await Promise.race([
        ...requests.map((request) => request.finally(() => (answered = true))),
        // without the key both would run and wait on the lock: say so instead of timing out
        until(async () => answered || (await waitingOnLocks()) >= 2).then(() => 'both requests wait on the lock' as const),
      ]);
      // the one that did not claim the key answers while the other is held
      expect(first).not.toBe('both requests wait on the lock');
      const refused = first as Awaited<(typeof requests)[number]>;
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe('idempotency_in_progress');
      expect(refused.headers['retry-after']).toBe('1');
      await holder.query('COMMIT');
      const statuses = (await Promise.all(requests)).map((res) => res.statusCode).sort();
      expect(statuses).toEqual([201, 409]);
    } finally {
      await holder.end();
    }
    expect(await reportsBy(reporter.user.id)).toHaveLength(1);
    const replay = await report(reporter.accessToken, body, key);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().id).toBe((await reportsBy(reporter.user.id))[0]);
  });

  it('keeps nothing for a request refused by validation: a corrected retry with the key runs', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const invalid = await report(reporter.accessToken, { reportedId: target.user.id, reason: 'because' }, key);
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().error.code).toBe('validation_failed');
    expect(await keyRows(key)).toEqual([]);
    const valid = await report(reporter.accessToken, { reportedId: target.user.id, reason: 'spam' }, key);
    expect(valid.statusCode).toBe(201);
    expect(valid.headers['idempotent-replayed']).toBeUndefined();
    expect(await reportsBy(reporter.user.id)).toEqual([valid.json().id]);
  });

  it("keeps an error our code answered once the handler ran (Stripe's rule): a retry gets the same 404 again", async () => {
    const { reporter } = await pair();
    const key = randomUUID();
    const body = { reportedId: randomUUID(), reason: 'spam' };
    const first = await report(reporter.accessToken, body, key);
    expect(first.statusCode).toBe(404);
    const again = await report(reporter.accessToken, body, key);
    expect(again.statusCode).toBe(404);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect(await keyRows(key)).toMatchObject([{ state: 'completed', response_status: 404 }]);
  });

  it('releases the key when the request fails with a 5xx: a retry once the database accepts the insert runs', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam' };
    // the database refusing every insert into reports as a serialization failure, as when it is overloaded
    await t.container.db.query(`
      CREATE FUNCTION refuse_reports() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$`);
    await t.container.db.query('CREATE TRIGGER refuse_reports BEFORE INSERT ON reports FOR EACH ROW EXECUTE FUNCTION refuse_reports()');
    try {
      const failed = await report(reporter.accessToken, body, key);
      expect(failed.statusCode).toBe(503);
      expect(failed.json().error.code).toBe('dependency_unavailable');
      expect(await keyRows(key)).toEqual([]);
    } finally {
      await t.container.db.query('DROP TRIGGER refuse_reports ON reports');
      await t.container.db.query('DROP FUNCTION refuse_reports()');
    }
    const retried = await report(reporter.accessToken, body, key);
    expect(retried.statusCode).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    expect(await reportsBy(reporter.user.id)).toEqual([retried.json().id]);
  });

  it("never replays one user's response to another user sending the same key", async () => {
    const { reporter, target } = await pair();
    const other = await register(t.app);
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam' };
    const mine = await report(reporter.accessToken, body, key);
    const theirs = await report(other.accessToken, body, key);
    expect(theirs.statusCode).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(theirs.json()).toMatchObject({ reporterId: other.user.id });
    expect(theirs.json().id).not.toBe(mine.json().id);
    expect((await keyRows(key)).map((row) => row.user_id).sort()).toEqual([reporter.user.id, other.user.id].sort());
  });

  it('refuses an empty key or one over 255 characters with 400 idempotency_key_invalid, and takes 255', async () => {
    const { reporter, target } = await pair();
    const body = { reportedId: target.user.id, reason: 'spam' };
    for (const key of ['', 'k'.repeat(256)]) {
      const res = await report(reporter.accessToken, body, key);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('idempotency_key_invalid');
    }
    expect(await reportsBy(reporter.user.id)).toEqual([]);
    expect((await report(reporter.accessToken, body, 'k'.repeat(255))).statusCode).toBe(201);
  });

  it('behaves as before without the header: two requests, two reports', async () => {
    const { reporter, target } = await pair();
    const body = { reportedId: target.user.id, reason: 'spam' };
    const [first, second] = [await report(reporter.accessToken, body), await report(reporter.accessToken, body)];
    expect([first.statusCode, second.statusCode]).toEqual([201, 201]);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(await reportsBy(reporter.user.id)).toHaveLength(2);
  });

  it('replays after Redis lost its data: the keys live in PostgreSQL', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam' };
    const first = await report(reporter.accessToken, body, key);
    expect(first.statusCode).toBe(201);
    // this worker's own Redis database: other suites share the server, so no FLUSHALL
    await t.container.redis.client.flushdb();
    const again = await report(reporter.accessToken, body, key);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    expect(await reportsBy(reporter.user.id)).toHaveLength(1);
  });

  it('lets a new request take over a key whose request died before answering, once the takeover bound has passed', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam' };
    // what a process killed between claim and response leaves behind: the key held, no response
    const scope = { userId: reporter.user.id, route: 'POST /reports', key };
    const hash = requestHash({ params: {}, query: {}, body });
    expect(await t.container.idempotency.claim(scope, hash)).toMatchObject({ outcome: 'acquired' });
    expect((await report(reporter.accessToken, body, key)).statusCode).toBe(409);
    clock.advance(60_000);
    const fresh = await login(t.app, reporter.email);
    const taken = await report(fresh.accessToken, body, key);
    expect(taken.statusCode).toBe(201);
    expect(await reportsBy(reporter.user.id)).toEqual([taken.json().id]);
  });

  it('keeps a response 24 h: a retry just before replays, one at 24 h runs again', async () => {
    const { reporter, target } = await pair();
    const key = randomUUID();
    const body = { reportedId: target.user.id, reason: 'spam' };
    const first = await report(reporter.accessToken, body, key);
    expect(first.statusCode).toBe(201);
    clock.advance(DAY - 1000);
    const lateButInTime = await report((await login(t.app, reporter.email)).accessToken, body, key);
    expect(lateButInTime.headers['idempotent-replayed']).toBe('true');
    expect(lateButInTime.json().id).toBe(first.json().id);
    clock.advance(1000);
    const afterExpiry = await report((await login(t.app, reporter.email)).accessToken, body, key);
    expect(afterExpiry.statusCode).toBe(201);
    expect(afterExpiry.headers['idempotent-replayed']).toBeUndefined();
    expect(await reportsBy(reporter.user.id)).toEqual([first.json().id, afterExpiry.json().id]);
  });

  it('purgeExpired deletes the expired keys and keeps the live ones', async () => {
    const { reporter, target } = await pair();
    const [oldKey, newKey] = [randomUUID(), randomUUID()];
    expect((await report(reporter.accessToken, { reportedId: target.user.id, reason: 'spam' }, oldKey)).statusCode).toBe(201);
    clock.advance(DAY / 2);
    const fresh = await login(t.app, reporter.email);
    expect((await report(fresh.accessToken, { reportedId: target.user.id, reason: 'other' }, newKey)).statusCode).toBe(201);
    clock.advance(DAY / 2);
    expect(await t.container.idempotency.purgeExpired(clock.now())).toBeGreaterThanOrEqual(1);
    expect(await keyRows(oldKey)).toEqual([]);
    expect(await keyRows(newKey)).toHaveLength(1);
    expect(await t.container.idempotency.purgeExpired(clock.now())).toBe(0);
  });

  it('is documented on POST /reports only: the header parameter and the 409 and 422 answers', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const post = document.paths['/reports'].post;
    const header = post.parameters.find((parameter: { in: string; name: string }) => parameter.in === 'header' && parameter.name === 'Idempotency-Key');
    expect(header).toMatchObject({ required: false, schema: { type: 'string', minLength: 1, maxLength: 255 } });
    expect(header.description).toContain('Idempotent-Replayed');
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['201', '409', '422']));
    const mine = document.paths['/reports/mine'].get;
    expect((mine.parameters ?? []).map((parameter: { name: string }) => parameter.name)).not.toContain('Idempotency-Key');
    expect(Object.keys(mine.responses)).not.toContain('422');
  });

  it('refuses a route that opts in without requiring a signed-in caller: keys belong to a user', async () => {
    const app = Fastify();
    await app.register(idempotency, { store: t.container.idempotency });
    expect(() => app.post('/open', { config: { idempotent: true } }, async () => ({}))).toThrow(/must require a signed-in caller/);
    expect(() => app.post('/signed-in', { config: { idempotent: true, auth: 'user' } }, async () => ({}))).not.toThrow();
    await app.close();
  });

  it('exposes Idempotent-Replayed to browsers', async () => {
    const origin = t.container.config.FRONTEND_URL[0];
    const res = await t.app.inject({ method: 'GET', url: '/health', headers: { origin } });
    expect(res.headers['access-control-expose-headers']).toContain('Idempotent-Replayed');
  });
});
