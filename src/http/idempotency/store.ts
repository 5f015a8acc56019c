import type { DataSource } from 'typeorm';
import type { Clock } from '../../infra/clock.js';

/** Whose key on which route: one user's key never reaches another user's (or route's) response. */
export interface IdempotencyScope {
  userId: string;
  /** Method and route pattern, e.g. `POST /reports`. */
  route: string;
  key: string;
}

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What the caller of `claim` does next. */
export type Claim =
  /** Run the request; then `complete` or `release` with this `startedAt`. */
  | { outcome: 'acquired'; startedAt: Date }
  /** Answer with the first request's response. */
  | { outcome: 'replay'; response: StoredResponse }
  /** The first request with this key is still running. */
  | { outcome: 'in_progress' }
  /** The key was used with a different request. */
  | { outcome: 'mismatch' };

export interface IdempotencyStoreOptions {
  /** How long a key and its response are kept (24 h, as Stripe does). */
  ttlMs: number;
  /**
   * An in-progress key older than this belongs to a request that died (a crash between claim
   * and response): a new request with the key takes it over instead of getting 409 for ever.
   * Longer than any request runs.
   */
  takeoverAfterMs: number;
}

export const DEFAULT_IDEMPOTENCY_OPTIONS: IdempotencyStoreOptions = { ttlMs: 24 * 60 * 60 * 1000, takeoverAfterMs: 60_000 };

interface Row {
  request_hash: string;
  state: 'in_progress' | 'completed';
  response_status: number | null;
  response_headers: Record<string, string> | null;
  response_body: Buffer | null;
}

/**
 * Idempotency keys in PostgreSQL, so they are as durable as the rows the requests create:
 * a Redis restart cannot make a retry run twice.
 */
export class IdempotencyStore {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly options: IdempotencyStoreOptions = DEFAULT_IDEMPOTENCY_OPTIONS,
  ) {}

  /**
   * Takes the key for a request with this hash, or says why not. Taking it is one statement
   * (insert, or take over an expired or abandoned entry), so of two concurrent requests one wins.
   */
  async claim(scope: IdempotencyScope, requestHash: string): Promise<Claim> {
    // An entry deleted (released) between the failed insert and the read: try again; a third
    // collision in a row means requests are racing on the key, which is what 409 says.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const now = this.clock.now();
      const taken = await this.db.query<Array<{ created_at: Date }>>(
        `INSERT INTO idempotency_keys AS entry (user_id, route, key, request_hash, state, created_at, expires_at)
         VALUES ($1, $2, $3, $4, 'in_progress', $5, $6)
         ON CONFLICT (user_id, route, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, state = 'in_progress', response_status = NULL, response_headers = NULL,
               response_body = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
           WHERE entry.expires_at <= $5 OR (entry.state = 'in_progress' AND entry.created_at <= $7)
         RETURNING created_at`,
        [
          scope.userId,
          scope.route,
          scope.key,
          requestHash,
          now,
          new Date(now.getTime() + this.options.ttlMs),
          new Date(now.getTime() - this.options.takeoverAfterMs),
        ],
      );
      if (taken[0]) return { outcome: 'acquired', startedAt: taken[0].created_at };
      const [row] = await this.db.query<Row[]>(
        'SELECT request_hash, state, response_status, response_headers, response_body FROM idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3',
        [scope.userId, scope.route, scope.key],
      );
      if (!row) continue;
      if (row.request_hash !== requestHash) return { outcome: 'mismatch' };
      if (row.state === 'in_progress' || row.response_status === null) return { outcome: 'in_progress' };
      return { outcome: 'replay', response: { status: row.response_status, headers: row.response_headers ?? {}, body: row.response_body ?? Buffer.alloc(0) } };
    }
    return { outcome: 'in_progress' };
  }

  /**
   * Stores the response of the request that claimed the key at `startedAt`. A request whose
   * key was taken over (it outlived `takeoverAfterMs`) stores nothing: the key is no longer its.
   */
  async complete(scope: IdempotencyScope, startedAt: Date, response: StoredResponse): Promise<void> {
    await this.db.query(
      `UPDATE idempotency_keys SET state = 'completed', response_status = $5, response_headers = $6, response_body = $7
       WHERE user_id = $1 AND route = $2 AND key = $3 AND state = 'in_progress' AND created_at = $4`,
      [scope.userId, scope.route, scope.key, startedAt, response.status, JSON.stringify(response.headers), response.body],
    );
  }

  /** Frees the key of a request that failed, so a retry with it runs again. */
  async release(scope: IdempotencyScope, startedAt: Date): Promise<void> {
    await this.db.query(`DELETE FROM idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3 AND state = 'in_progress' AND created_at = $4`, [
      scope.userId,
      scope.route,
      scope.key,
      startedAt,
    ]);
  }

  /** Deletes the keys expired at `now` (run periodically); returns how many. */
  async purgeExpired(now: Date = this.clock.now()): Promise<number> {
    const [, deleted] = await this.db.query<[unknown, number]>('DELETE FROM idempotency_keys WHERE expires_at <= $1', [now]);
    return deleted;
  }
}
