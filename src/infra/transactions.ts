import { QueryFailedError, type DataSource, type EntityManager } from 'typeorm';

/** SQLSTATEs after which PostgreSQL has rolled the transaction back and running it again may succeed. */
const RETRYABLE = new Set(['40P01', '40001']);

export function isRetryableTransactionError(error: unknown): boolean {
  return error instanceof QueryFailedError && RETRYABLE.has((error.driverError as { code?: string }).code ?? '');
}

/**
 * Runs `work` in a transaction, and again (up to `attempts` times in all, after a short random
 * pause) when PostgreSQL aborts it as a deadlock victim (40P01) or a serialization failure
 * (40001): both mean "nothing was written, try again", never a reason to fail the request.
 */
export async function transactionWithRetry<T>(db: DataSource, work: (manager: EntityManager) => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await db.transaction(work);
    } catch (error) {
      if (attempt >= attempts || !isRetryableTransactionError(error)) throw error;
      // jitter, so the transactions that collided do not collide again in lockstep
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
}
