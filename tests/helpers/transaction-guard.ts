import { AsyncLocalStorage } from 'node:async_hooks';
import type { Pool, PoolClient } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';

/**
 * Makes any pool acquisition inside a transaction fail: code that takes a second connection
 * while its transaction holds one deadlocks the pool once pool-size such requests run at once.
 * Violations are also kept, so one swallowed by a catch still fails the test app's close().
 */
export function guardNestedPoolAcquisition(db: DataSource): { violations: Error[] } {
  const violations: Error[] = [];
  const insideTransaction = new AsyncLocalStorage<true>();
  const pool = (db.driver as unknown as { master: Pool }).master;
  const connect = pool.connect.bind(pool) as (callback?: (error: Error | undefined, client?: PoolClient, done?: () => void) => void) => unknown;
  Object.assign(pool, {
    connect: (callback?: (error: Error | undefined) => void) => {
      if (insideTransaction.getStore()) {
        const error = new Error('a pool connection was requested inside a transaction: read and write through the transaction manager');
        violations.push(error);
        if (callback) return void process.nextTick(callback, error);
        return Promise.reject(error);
      }
      return connect(callback);
    },
  });
  const transaction = db.transaction.bind(db) as (...args: unknown[]) => Promise<unknown>;
  Object.assign(db, {
    transaction: (...args: unknown[]) => {
      const work = args.at(-1) as (manager: EntityManager) => Promise<unknown>;
      return transaction(...args.slice(0, -1), (manager: EntityManager) => insideTransaction.run(true, () => work(manager)));
    },
  });
  return { violations };
}
