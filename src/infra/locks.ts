import { createHash } from 'node:crypto';
import type { PoolClient, Pool } from 'pg';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import { LockUnavailableError } from '../shared/errors.js';
import type { Logger } from './logger.js';

export interface LockOptions {
  /** The longest the holder may keep the lock (ms): then its signal aborts and the lock is given up. */
  ttl: number;
  /** How long to keep trying for the lock (ms) before LockUnavailableError; 0 tries once. */
  wait: number;
}

export interface HeldLock {
  /** Grows by one each time this lock name is taken, across instances: writes can refuse an older holder's. */
  fencingToken: number;
  /** Aborts when the ttl runs out or the holding connection is lost: the lock is no longer held. */
  signal: AbortSignal;
}

/** Runs work that two instances must not run at once. */
export interface LockService {
  withLock<T>(name: string, options: LockOptions, fn: (lock: HeldLock) => Promise<T>): Promise<T>;
}

/** The fencing counters: one row per lock name ever taken. */
@Entity('locks')
export class LockFence {
  @PrimaryColumn({ type: 'varchar', length: 200 })
  name!: string;

  @Column({ name: 'fencing_token', type: 'bigint' })
  fencingToken!: string;

  @Column({ name: 'acquired_at', type: 'timestamptz' })
  acquiredAt!: Date;
}

/** A name's advisory-lock key: the first 64 bits of its SHA-256, as PostgreSQL's signed bigint. */
export function advisoryKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

const FIRST_PAUSE_MS = 20;
const MAX_PAUSE_MS = 500;

/**
 * Locks on PostgreSQL session advisory locks rather than Redis: every instance (and the CLI
 * scripts) already shares the database, whereas Redis may be the in-process emulation, which
 * one process cannot share with another. The lock lives on a connection taken from the pool
 * for as long as it is held, so a holder that dies (process, network, pg_terminate_backend)
 * loses it with its connection, and the fencing token is bumped on that connection in the
 * same statement that takes the lock.
 *
 * How ttl applies: the holding connection carries idle_session_timeout = ttl, so PostgreSQL
 * itself ends the session (and frees the lock) at ttl even when this process is stuck; and
 * `fn`'s signal aborts at ttl (and when the connection is lost), so `fn` can stop: past that,
 * another holder may run, and only the fencing token tells their writes apart.
 */
export class PgLockService implements LockService {
  private readonly pool: Pool;

  constructor(
    db: DataSource,
    private readonly logger: Logger,
  ) {
    this.pool = (db.driver as PostgresDriver).master as Pool;
  }

  async withLock<T>(name: string, options: LockOptions, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
    const key = advisoryKey(name);
    const deadline = Date.now() + options.wait;
    for (let attempt = 0; ; attempt += 1) {
      const held = await this.tryTake(name, key, options.ttl);
      if (held) return this.runHolding(name, key, held, options.ttl, fn);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new LockUnavailableError(name, options.wait);
      // exponential backoff with full jitter, so waiters do not retry in step
      const pause = Math.random() * Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, remaining)));
    }
  }

  /** The connection holding the lock and the fencing token, or null when another session holds it. */
  private async tryTake(name: string, key: string, ttl: number): Promise<{ client: PoolClient; fencingToken: number } | null> {
    const client = await this.pool.connect();
    try {
      const { rows } = await client.query<{ fencing_token: string }>(
        `WITH taken AS (SELECT pg_try_advisory_lock($1::bigint) AS ok)
           INSERT INTO locks (name, fencing_token, acquired_at) SELECT $2, 1, now() FROM taken WHERE ok
           ON CONFLICT (name) DO UPDATE SET fencing_token = locks.fencing_token + 1, acquired_at = excluded.acquired_at
           RETURNING fencing_token`,
        [key, name],
      );
      if (!rows[0]) {
        client.release();
        return null;
      }
      await client.query(`SELECT set_config('idle_session_timeout', $1, false)`, [String(Math.max(1, Math.ceil(ttl)))]);
      return { client, fencingToken: Number(rows[0].fencing_token) };
    } catch (error) {
      // the lock may be held on it: the connection goes rather than back to the pool
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  private async runHolding<T>(
    name: string,
    key: string,
    { client, fencingToken }: { client: PoolClient; fencingToken: number },
    ttl: number,
    fn: (lock: HeldLock) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const lost = (error: Error) => {
      this.logger.warn({ lock: name, err: { message: error.message } }, 'lost the connection holding a lock');
      controller.abort(new Error(`lock ${name}: the connection holding it was lost`));
    };
    client.on('error', lost);
    const expiry = setTimeout(() => controller.abort(new Error(`lock ${name}: held longer than its ttl of ${ttl} ms`)), ttl);
    try {
      return await fn({ fencingToken, signal: controller.signal });
    } finally {
      clearTimeout(expiry);
      await this.release(client, key, controller.signal.aborted);
      client.off('error', lost);
    }
  }

  /** Unlocks and returns the connection to the pool; a connection that was lost or is in doubt is closed instead. */
  private async release(client: PoolClient, key: string, aborted: boolean): Promise<void> {
    if (aborted) {
      client.release(true);
      return;
    }
    try {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
      await client.query('RESET idle_session_timeout');
      client.release();
    } catch (error) {
      client.release(error instanceof Error ? error : true);
    }
  }
}
