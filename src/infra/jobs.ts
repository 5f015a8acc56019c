import { createPostgresBackend, Queue, runMigrations, UnrecoverableError, Worker, type Job, type JobsOptions, type MinimalJob } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from './logger.js';
import { connectRedis, type RedisTarget } from './redis.js';

/** Where a job is. `dead`: failed on its last attempt; it stays until an operator looks (the dead letter). */
export const JOB_STATES = ['waiting', 'delayed', 'active', 'completed', 'dead'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobContext {
  /** As `JobQueue.enqueue` returned it. */
  jobId: string;
  /** 1 on the first run, 2 on the first retry, … */
  attempt: number;
  /** Reports how far the job is (0-100), readable through `JobQueue.get`. */
  progress: (percent: number) => Promise<void>;
  logger: Logger;
  /** Aborted when the job times out (its reason a JobTimeoutError) or a shutdown abandons it: long work should stop early. */
  signal: AbortSignal;
}

/** One kind of background work; modules export theirs from their own `jobs.ts`. */
export interface JobDefinition<P = never> {
  /** Unique across Parley, e.g. `mail.send`; also the queue's name. */
  name: string;
  handle(payload: P, context: JobContext): Promise<void>;
  /** Runs in all, the first included (default 3). After the last failure the job is dead. */
  attempts?: number;
  /** Delay before the first retry, doubled for each next one (default 1 s); a RetryLaterError sets its own. */
  backoffMs?: number;
  /** Jobs of this kind one process runs at once (default 1). */
  concurrency?: number;
  /** Runs on its own, once per tick across all instances. */
  schedule?: { cron: string } | { everyMs: number };
  /** A run that takes longer fails (and is retried as any failure). */
  timeoutMs?: number;
  /** Deletes a job as soon as it succeeds (payloads holding secrets); otherwise the last day's are kept. */
  removeOnComplete?: boolean;
}

export interface EnqueueOptions {
  /** A second enqueue with the same id (while the first is kept) adds nothing. */
  jobId?: string;
  delayMs?: number;
}

/** What an operator may see of a job: never its payload. */
export interface JobInfo {
  /** `<job name>:<id in its queue>` */
  id: string;
  name: string;
  state: JobState;
  progress: number;
  /** Runs started so far (the one running included; a run cut by a crash counts too). */
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface QueueStats {
  queue: string;
  counts: Record<JobState, number>;
}

/** What services use to hand work to the background. */
export interface JobQueue {
  /** Returns the job's id (the existing one's when `jobId` was already enqueued). */
  enqueue(name: string, payload: unknown, options?: EnqueueOptions): Promise<string>;
  get(id: string): Promise<JobInfo | null>;
  stats(): Promise<QueueStats[]>;
}

export type JobsBackendConfig = { kind: 'postgres'; url: string; poolSize: number } | { kind: 'redis'; target: RedisTarget; prefix: string };

/** Job durations and failures, for /metrics. */
export interface JobObserver {
  jobFinished(name: string, outcome: 'completed' | 'failed', seconds: number, final: boolean): void;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- a queue or worker on either backend: BullMQ types each backend's connection apart */
type AnyQueue = Queue<any, void, string, any, void, string, any, any>;
type AnyWorker = Worker<any, void, string, any, any, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

const KEEP_COMPLETED = { age: 24 * 3600, count: 1000 };
const KEEP_DEAD = { age: 30 * 24 * 3600, count: 10_000 };
/** The PostgreSQL schema BullMQ's tables live in, apart from Parley's. */
const SCHEMA = 'bullmq';

/** An unknown job name is a programming error, never a client's. */
export class UnknownJobError extends Error {
  override name = 'UnknownJobError';
}

export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError';
}

/** Thrown by a job that must not run again (the request is wrong for good): it goes dead at once. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/** Thrown by a job told when to come back (an HTTP Retry-After): the next run waits that long instead of the usual backoff. */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}

/** BullMQ's name for our backoff: exponential from the job's delay, unless the error says when. */
const BACKOFF_TYPE = 'exponential-or-retry-after';

function backoffDelay(attemptsMade: number, _type: string | undefined, error: Error | undefined, job: MinimalJob | undefined): number {
  if (error instanceof RetryLaterError) return error.delayMs;
  const backoff = job?.opts.backoff;
  const base = typeof backoff === 'object' ? (backoff.delay ?? 1_000) : 1_000;
  return Math.round(2 ** (attemptsMade - 1) * base);
}

/** Room for the listeners of up to 40 job kinds (a Queue and a Worker each) and a few of our own. */
const MAX_POOL_LISTENERS = 100;

/** How long an abandoned job's handler gets, once aborted, to stop cleanly before the connections close. */
const ABORT_GRACE_MS = 2_000;

/** The advisory lock instances take turns under to write job schedules. */
const SCHEDULER_LOCK = 'parley:job-schedulers';

/**
 * BullMQ's connection, on either backend. PostgreSQL: one bounded pool in its own schema
 * (its migrations run here); each worker holds one of its connections for LISTEN. Redis: one
 * connection for the queues, two more per worker.
 */
export class JobStore {
  private constructor(
    private readonly config: JobsBackendConfig,
    private readonly connection: pg.Pool | Redis,
  ) {}

  static async open(config: JobsBackendConfig): Promise<JobStore> {
    if (config.kind === 'redis') {
      // BullMQ's workers block on Redis: a command must wait for the connection, not fail.
      return new JobStore(config, connectRedis(config.target, { maxRetriesPerRequest: null }));
    }
    const pool = new pg.Pool({ connectionString: config.url, max: config.poolSize, options: `-c search_path=${SCHEMA}` });
    // An idle connection that drops is replaced at its next use; the queries BullMQ makes report their own failures.
    pool.on('error', () => undefined);
    // BullMQ's PostgreSQL backend adds one 'error' listener to the pool for each Queue and
    // Worker, two per job kind: their number follows the job kinds, it is not a leak.
    pool.setMaxListeners(MAX_POOL_LISTENERS);
    try {
      const client = await pool.connect();
      try {
        await runMigrations(client, SCHEMA);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new JobStore(config, pool);
  }

  /**
   * Each worker holds one connection of the pool for LISTEN: the pool grows by one per worker,
   * on top of the connections configured for queries, so that workers never starve enqueues.
   */
  reserveListeners(count: number): void {
    if (this.connection instanceof pg.Pool && this.config.kind === 'postgres') this.connection.options.max = this.config.poolSize + count;
  }

  queue(name: string): AnyQueue {
    return this.connection instanceof Redis
      ? new Queue(name, { connection: this.connection, prefix: this.prefix })
      : new Queue(name, { connection: this.connection }, createPostgresBackend);
  }

  worker(name: string, run: (job: Job) => Promise<void>, options: { concurrency: number; lockDurationMs: number }): AnyWorker {
    const settings = {
      concurrency: options.concurrency,
      settings: { backoffStrategy: backoffDelay },
      lockDuration: options.lockDurationMs,
      stalledInterval: options.lockDurationMs,
      maxStalledCount: 1,
    };
    return this.connection instanceof Redis
      ? new Worker(name, run, { ...settings, connection: this.connection, prefix: this.prefix })
      : new Worker(name, run, { ...settings, connection: this.connection }, createPostgresBackend);
  }

  /**
   * Runs `work` while no other instance runs its own: on PostgreSQL under an advisory lock. On
   * Redis BullMQ's scheduler changes are single Lua scripts already.
   */
  async exclusively(work: () => Promise<void>): Promise<void> {
    if (this.connection instanceof Redis) return work();
    const client = await this.connection.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [SCHEDULER_LOCK]);
      try {
        await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [SCHEDULER_LOCK]);
      }
    } finally {
      client.release();
    }
  }

  private get prefix(): string | undefined {
    return this.config.kind === 'redis' ? this.config.prefix : undefined;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    if (connection instanceof Redis) await connection.quit().catch(() => connection.disconnect());
    else await connection.end();
  }
}

function withTimeout(work: Promise<void>, timeoutMs: number | undefined, controller: AbortController): Promise<void> {
  if (!timeoutMs) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new JobTimeoutError(`did not finish within ${timeoutMs} ms`);
      // the reason tells a handler a timeout (a failure) from a shutdown (the job runs again)
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function jobOptions(definition: JobDefinition<never>): JobsOptions {
  return {
    attempts: definition.attempts ?? 3,
    backoff: { type: BACKOFF_TYPE, delay: definition.backoffMs ?? 1_000 },
    removeOnComplete: definition.removeOnComplete ? true : KEEP_COMPLETED,
    removeOnFail: KEEP_DEAD,
  };
}

function toState(state: string): JobState {
  if (state === 'failed') return 'dead';
  if (state === 'active' || state === 'completed' || state === 'delayed') return state;
  return 'waiting';
}

/** The queue side: enqueue, look up, count. Knows the job kinds once the runtime defines them. */
export class BullJobQueue implements JobQueue {
  private readonly queues = new Map<string, { queue: AnyQueue; options: JobsOptions }>();

  constructor(private readonly store: JobStore) {}

  define(definition: JobDefinition<never>): void {
    if (this.queues.has(definition.name)) throw new Error(`job ${definition.name} is defined twice`);
    if (definition.name.includes(':')) throw new Error(`job name ${definition.name} must not contain ':'`);
    this.queues.set(definition.name, { queue: this.store.queue(definition.name), options: jobOptions(definition) });
  }

  /** The BullMQ queue of a defined job kind. */
  queueOf(name: string): AnyQueue {
    return this.entry(name).queue;
  }

  private entry(name: string) {
    const entry = this.queues.get(name);
    if (!entry) throw new UnknownJobError(`no job is defined as ${name}`);
    return entry;
  }

  async enqueue(name: string, payload: unknown, options: EnqueueOptions = {}): Promise<string> {
    const { queue, options: defaults } = this.entry(name);
    const job = await queue.add(name, payload, { ...defaults, jobId: options.jobId, delay: options.delayMs });
    return `${name}:${job.id}`;
  }

  async get(id: string): Promise<JobInfo | null> {
    const separator = id.indexOf(':');
    const entry = separator > 0 ? this.queues.get(id.slice(0, separator)) : undefined;
    if (!entry) return null;
    const jobId = id.slice(separator + 1);
    // The state first: the job read after it is at least as new (a finished job's, final).
    const state = await entry.queue.getJobState(jobId);
    const job = state === 'unknown' ? undefined : await entry.queue.getJob(jobId);
    if (!job) return null;
    return {
      id,
      name: job.name,
      state: toState(state),
      progress: typeof job.progress === 'number' ? job.progress : 0,
      attempts: job.attemptsStarted,
      maxAttempts: job.opts.attempts ?? 1,
      lastError: job.failedReason || null,
      createdAt: new Date(job.timestamp),
      startedAt: job.processedOn ? new Date(job.processedOn) : null,
      finishedAt: job.finishedOn ? new Date(job.finishedOn) : null,
    };
  }

  async stats(): Promise<QueueStats[]> {
    return Promise.all(
      [...this.queues].map(async ([name, { queue }]) => {
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
        return {
          queue: name,
          counts: {
            waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
            delayed: counts.delayed ?? 0,
            active: counts.active ?? 0,
            completed: counts.completed ?? 0,
            dead: counts.failed ?? 0,
          },
        };
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map(({ queue }) => queue.close()));
  }
}

export interface JobRuntimeOptions {
  logger: Logger;
  observer?: JobObserver;
  /** A running job whose process stopped renewing its lock for this long goes back to the queue. */
  lockDurationMs: number;
}

/**
 * Runs the defined jobs: one BullMQ worker per kind, and a job scheduler per scheduled kind
 * (BullMQ creates each tick's job once, whichever instance upserted it).
 */
export class JobRuntime {
  private readonly workers: AnyWorker[] = [];
  /** The runs in progress: their abort controllers, and what settles when each handler returns. */
  private readonly running = new Map<AbortController, Promise<unknown>>();

  constructor(
    private readonly store: JobStore,
    private readonly queue: BullJobQueue,
    private readonly definitions: ReadonlyArray<JobDefinition<never>>,
    private readonly options: JobRuntimeOptions,
  ) {
    for (const definition of definitions) queue.define(definition);
  }

  /** Upserts the schedules, then (with `workers`) starts taking jobs. */
  async start({ workers }: { workers: boolean }): Promise<void> {
    // Upserting a schedule while another instance's worker claims its next tick can run that
    // tick twice (seen on the PostgreSQL backend with two instances starting together). So the
    // instances take turns, and a schedule already as defined is left alone: only the first start
    // of a new or changed schedule writes it.
    await this.store.exclusively(async () => {
      for (const definition of this.definitions) {
        if (!definition.schedule) continue;
        const repeat = 'cron' in definition.schedule ? { pattern: definition.schedule.cron } : { every: definition.schedule.everyMs };
        const queue = this.queue.queueOf(definition.name);
        const current = await queue.getJobScheduler(definition.name);
        const unchanged =
          current !== undefined &&
          (current.pattern ?? undefined) === repeat.pattern &&
          (current.every === undefined ? undefined : Number(current.every)) === repeat.every;
        if (unchanged) continue;
        await queue.upsertJobScheduler(definition.name, repeat, { name: definition.name, data: {}, opts: jobOptions(definition) });
      }
    });
    if (workers) {
      this.store.reserveListeners(this.definitions.length);
      for (const definition of this.definitions) this.workers.push(this.startWorker(definition));
      // Each worker's listening connection is open before start returns: a close right after
      // a start would otherwise wait forever on a connection that opens after it.
      await Promise.all(this.workers.map((worker) => worker.waitUntilReady()));
    }
  }

  private startWorker(definition: JobDefinition<never>): AnyWorker {
    const { logger, observer } = this.options;
    const worker = this.store.worker(
      definition.name,
      async (job) => {
        const controller = new AbortController();
        let handled: () => void = () => undefined;
        this.running.set(controller, new Promise<void>((resolve) => (handled = resolve)));
        const started = performance.now();
        const attempt = job.attemptsMade + 1;
        const context: JobContext = {
          jobId: `${definition.name}:${job.id}`,
          attempt,
          progress: (percent) => job.updateProgress(percent),
          logger: logger.child({ job: definition.name, jobId: job.id, attempt }),
          signal: controller.signal,
        };
        try {
          await withTimeout(definition.handle(job.data as never, context), definition.timeoutMs, controller);
          observer?.jobFinished(definition.name, 'completed', (performance.now() - started) / 1000, true);
        } catch (error) {
          const final = error instanceof PermanentJobError || attempt >= (job.opts.attempts ?? 1);
          observer?.jobFinished(definition.name, 'failed', (performance.now() - started) / 1000, final);
          context.logger[final ? 'error' : 'warn']({ err: error, final }, final ? 'job failed on its last attempt' : 'job failed; it will be retried');
          // BullMQ moves an UnrecoverableError's job to failed without using its remaining attempts.
          throw error instanceof PermanentJobError ? new UnrecoverableError(error.message) : error;
        } finally {
          this.running.delete(controller);
          handled();
        }
      },
      { concurrency: definition.concurrency ?? 1, lockDurationMs: this.options.lockDurationMs },
    );
    worker.on('error', (error) => logger.warn({ err: error, job: definition.name }, 'job worker error'));
    return worker;
  }

  /**
   * Stops taking jobs and lets the running ones finish within `timeoutMs`. Those still running
   * then are abandoned: their locks lapse, and another instance (or this one after a restart)
   * runs them again. True when every running job finished in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    const workers = this.workers.splice(0);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const finished = await Promise.race([Promise.all(workers.map((worker) => worker.pause(false))).then(() => true), late]);
    clearTimeout(timer);
    if (!finished) {
      this.options.logger.warn({ running: this.running.size }, 'abandoned the jobs still running at shutdown; they run again elsewhere');
      const handlers = [...this.running.values()];
      for (const controller of this.running.keys()) controller.abort();
      // A handler that heeds its signal records what it did before the connections close.
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(handlers), new Promise((resolve) => (graceTimer = setTimeout(resolve, ABORT_GRACE_MS)))]);
      clearTimeout(graceTimer);
    }
    await Promise.all(workers.map((worker) => worker.close(!finished)));
    return finished;
  }
}

/** The queue, its runtime and their connection, built together and closed together. */
export interface Jobs {
  queue: BullJobQueue;
  /** Defines the job kinds; call once, before `start`. */
  define(definitions: ReadonlyArray<JobDefinition<never>>): JobRuntime;
  close(): Promise<void>;
}

export async function openJobs(config: JobsBackendConfig, options: JobRuntimeOptions): Promise<Jobs> {
  const store = await JobStore.open(config);
  const queue = new BullJobQueue(store);
  let runtime: JobRuntime | undefined;
  return {
    queue,
    define: (definitions) => {
      if (runtime) throw new Error('the jobs are defined once');
      runtime = new JobRuntime(store, queue, definitions, options);
      return runtime;
    },
    close: async () => {
      await runtime?.stop(0);
      await queue.close();
      await store.close();
    },
  };
}
