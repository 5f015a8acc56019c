import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { openJobs, type JobDefinition, type JobQueue, type Jobs, type JobsBackendConfig } from '../../src/infra/jobs.js';
import { createLogger } from '../../src/infra/logger.js';
import { testDatabaseUrl, testRedisUrl } from './app.js';

/** PostgreSQL always; Redis when the suite runs with TEST_REDIS_URL (the emulation cannot run BullMQ). */
export const JOB_BACKENDS = inject('redisUrl') ? (['postgres', 'redis'] as const) : (['postgres'] as const);

/** This test file's database, or its Redis db with a prefix of its own. */
export async function testJobsBackend(kind: 'postgres' | 'redis'): Promise<JobsBackendConfig> {
  if (kind === 'postgres') return { kind, url: await testDatabaseUrl(), poolSize: 4 };
  const url = await testRedisUrl();
  if (!url) throw new Error('TEST_REDIS_URL is not set');
  return { kind, target: { url }, prefix: `parley-test-jobs-${randomBytes(4).toString('hex')}` };
}

/** A queue and its runtime on `backend`, working on `definitions` when `workers`. */
export async function startJobs(
  backend: JobsBackendConfig,
  definitions: ReadonlyArray<JobDefinition<never>>,
  { workers = true, lockDurationMs = 30_000 }: { workers?: boolean; lockDurationMs?: number } = {},
): Promise<Jobs & { runtime: ReturnType<Jobs['define']> }> {
  const jobs = await openJobs(backend, { logger: createLogger({ level: 'silent' }), lockDurationMs });
  const runtime = jobs.define(definitions);
  await runtime.start({ workers });
  return { ...jobs, runtime };
}

/**
 * Polls `read` until `accept` holds (a bounded poll: fails with the last value after `timeoutMs`).
 * The pause grows from 25 ms to 250 ms, so a long wait on an HTTP read stays under the app's
 * per-IP rate limit (300 a minute) instead of reading its 429s.
 */
export async function eventually<T>(read: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let pauseMs = 25; ; pauseMs = Math.min(250, pauseMs * 1.5)) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** A promise the test resolves when it chooses. */
export function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/**
 * Resolves once the `names` queues have nothing waiting, delayed or running in two readings in
 * a row: a job that enqueues another as it completes (a reset request its mail) shows in the second.
 */
export async function whenJobsIdle(queue: JobQueue, names: readonly string[], timeoutMs = 15_000): Promise<void> {
  const idle = async () =>
    (await queue.stats()).filter((entry) => names.includes(entry.queue)).every(({ counts }) => counts.waiting + counts.delayed + counts.active === 0);
  let inARow = 0;
  await eventually(
    async () => (inARow = (await idle()) ? inARow + 1 : 0),
    (count) => count >= 2,
    timeoutMs,
  );
}
