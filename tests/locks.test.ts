import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advisoryKey, type HeldLock } from '../src/infra/locks.js';
import { AppError } from '../src/shared/errors.js';
import { buildTestApp, separateDatabaseUrl, type TestApp } from './helpers/app.js';
import { eventually, gate } from './helpers/jobs.js';

/** Two instances on one database, as two servers behind a load balancer would be. */
const ENV = { WORKERS: 'off', DATABASE_POOL_SIZE: '4' };

let a: TestApp;
let b: TestApp;

beforeAll(async () => {
  a = await buildTestApp({ env: ENV });
  b = await buildTestApp({
    env: ENV,
    // a route that needs a lock, to see the error as a client does
    extend: (app) => app.get('/test/locked', async () => b.container.locks.withLock('test.http', { ttl: 5_000, wait: 100 }, async () => ({ ran: true }))),
  });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

const fencingToken = async (t: TestApp, name: string): Promise<number | null> => {
  const [row] = await t.container.db.query<Array<{ fencing_token: string }>>('SELECT fencing_token FROM locks WHERE name = $1', [name]);
  return row ? Number(row.fencing_token) : null;
};

/** Holds `name` on `t` until the returned release() is called; resolves once it is held. */
async function hold(t: TestApp, name: string, ttl = 30_000): Promise<{ lock: HeldLock; release(): void; settled: Promise<unknown> }> {
  const held = gate();
  const done = gate();
  let lock!: HeldLock;
  const settled = t.container.locks.withLock(name, { ttl, wait: 0 }, async (taken) => {
    lock = taken;
    held.open();
    await done.opened;
  });
  await Promise.race([held.opened, settled]);
  return { lock, release: () => done.open(), settled };
}

describe('LockService across two instances', () => {
  it('runs one holder at a time, with fencing tokens that grow in the order the lock was taken', async () => {
    const entered: number[] = [];
    let active = 0;
    let mostActive = 0;
    const work = (t: TestApp) =>
      t.container.locks.withLock('test.exclusive', { ttl: 10_000, wait: 10_000 }, async ({ fencingToken }) => {
        active += 1;
        mostActive = Math.max(mostActive, active);
        entered.push(fencingToken);
        // real database work while holding, so that an overlapping holder would show
        await t.container.db.query('SELECT pg_sleep(0.02)');
        active -= 1;
        return fencingToken;
      });
    const tokens = await Promise.all([a, b, a, b, a, b].map(work));
    expect(mostActive).toBe(1);
    expect(new Set(tokens).size).toBe(6);
    for (let index = 1; index < entered.length; index += 1) expect(entered[index]).toBeGreaterThan(entered[index - 1]!);
    expect(await fencingToken(a, 'test.exclusive')).toBe(Math.max(...tokens));
  });

  it('answers lock_unavailable after `wait` while another instance holds the lock, then lets the next holder in once released', async () => {
    const holder = await hold(a, 'test.busy');
    try {
      const started = Date.now();
      const refused = await b.container.locks.withLock('test.busy', { ttl: 1_000, wait: 300 }, async () => 'ran').catch((error: unknown) => error);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(refused).toBeInstanceOf(AppError);
      expect(refused).toMatchObject({ code: 'lock_unavailable', statusCode: 503, details: { lock: 'test.busy', waitedMs: 300 } });
      // a waiter that outlasts the holder gets it
      const waiting = b.container.locks.withLock('test.busy', { ttl: 1_000, wait: 10_000 }, async ({ fencingToken }) => fencingToken);
      holder.release();
      expect(await waiting).toBe(holder.lock.fencingToken + 1);
    } finally {
      holder.release();
      await holder.settled;
    }
  });

  it('maps lock_unavailable to 503 over HTTP', async () => {
    const holder = await hold(a, 'test.http');
    try {
      const response = await b.app.inject({ method: 'GET', url: '/test/locked' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ error: { code: 'lock_unavailable' } });
    } finally {
      holder.release();
      await holder.settled;
    }
    expect((await b.app.inject({ method: 'GET', url: '/test/locked' })).json()).toEqual({ ran: true });
  });

  it('releases the lock when fn throws', async () => {
    await expect(
      a.container.locks.withLock('test.throws', { ttl: 5_000, wait: 0 }, async () => {
        throw new Error('the work failed');
      }),
    ).rejects.toThrow('the work failed');
    await expect(b.container.locks.withLock('test.throws', { ttl: 5_000, wait: 0 }, async () => 'ran')).resolves.toBe('ran');
  });

  it('frees the lock when the holding connection dies, and tells the holder through its signal', async () => {
    const holder = await hold(a, 'test.killed');
    try {
      const key = BigInt(advisoryKey('test.killed'));
      const unsigned = BigInt.asUintN(64, key);
      const [row] = await b.container.db.query<Array<{ pid: number }>>(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1`,
        [String(unsigned >> 32n), String(unsigned & 0xffffffffn)],
      );
      expect(row).toBeDefined();
      await b.container.db.query('SELECT pg_terminate_backend($1)', [row!.pid]);
      await eventually(
        () => holder.lock.signal.aborted,
        (aborted) => aborted,
      );
      const next = await b.container.locks.withLock('test.killed', { ttl: 1_000, wait: 5_000 }, async ({ fencingToken }) => fencingToken);
      expect(next).toBe(holder.lock.fencingToken + 1);
    } finally {
      holder.release();
      await holder.settled;
    }
  });

  it('gives the lock up at ttl even while the holder is still running', async () => {
    const holder = await hold(a, 'test.ttl', 300);
    try {
      const next = await b.container.locks.withLock('test.ttl', { ttl: 1_000, wait: 5_000 }, async ({ fencingToken }) => fencingToken);
      expect(holder.lock.signal.aborted).toBe(true);
      expect(next).toBe(holder.lock.fencingToken + 1);
    } finally {
      holder.release();
      await holder.settled;
    }
  });

  it('starts two instances at once on a fresh database: the partitions are created under the lock', async () => {
    const database = await separateDatabaseUrl();
    const env = { ...ENV, DATABASE_URL: database, DATABASE_POOL_SIZE: '3' };
    const started = await Promise.allSettled([buildTestApp({ env }), buildTestApp({ env })]);
    try {
      expect(started.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
      const [first] = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      expect(await fencingToken(first!, 'audit.partitions')).toBe(2);
      const partitions = await first!.container.db.query<Array<{ name: string }>>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'activity_logs'::regclass`,
      );
      expect(partitions).toHaveLength(2);
    } finally {
      for (const result of started) if (result.status === 'fulfilled') await result.value.close();
    }
  });

  it('runs two key rotations one after the other, and a rotation that cannot wait says so', async () => {
    const rotation = 'ollama.rotate-key';
    const before = (await fencingToken(a, rotation)) ?? 0;
    const holder = await hold(a, rotation);
    const refused = await b.container.services.ollama.keys.rotate(10).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'lock_unavailable', message: expect.stringContaining(rotation) });
    // both wait for the holder, then take turns
    const rotations = Promise.all([
      a.container.services.ollama.keys.rotate(10, { waitMs: 10_000 }),
      b.container.services.ollama.keys.rotate(10, { waitMs: 10_000 }),
    ]);
    holder.release();
    await holder.settled;
    expect(await rotations).toEqual([
      { resealed: 0, unreadable: 0 },
      { resealed: 0, unreadable: 0 },
    ]);
    expect(await fencingToken(a, rotation)).toBe(before + 3);
  });
});
