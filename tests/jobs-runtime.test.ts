import { afterEach, describe, expect, it } from 'vitest';
import { PermanentJobError, RetryLaterError, type JobContext, type JobDefinition, type Jobs, type JobsBackendConfig } from '../src/infra/jobs.js';
import { eventually, gate, JOB_BACKENDS, startJobs, testJobsBackend } from './helpers/jobs.js';

describe.each(JOB_BACKENDS)('jobs on %s', (kind) => {
  const opened: Jobs[] = [];
  const start = async (...args: Parameters<typeof startJobs>) => {
    const jobs = await startJobs(...args);
    opened.push(jobs);
    return jobs;
  };
  afterEach(async () => {
    for (const jobs of opened.splice(0)) await jobs.close();
  });
  // a backend of its own per test (a fresh Redis prefix; on PostgreSQL fresh job names keep tests apart)
  let sequence = 0;
  const fresh = async (): Promise<{ backend: JobsBackendConfig; name: (base: string) => string }> => {
    sequence += 1;
    const suffix = `${kind}-${sequence}`;
    return { backend: await testJobsBackend(kind), name: (base) => `test.${base}-${suffix}` };
  };

  it('retries a failing job with exponential backoff, then keeps it as dead with its last error', async () => {
    const { backend, name } = await fresh();
    const runs: Array<{ attempt: number; at: number }> = [];
    const failing: JobDefinition<{ n: number }> = {
      name: name('failing'),
      attempts: 3,
      backoffMs: 100,
      handle: async (_payload, { attempt }) => {
        runs.push({ attempt, at: Date.now() });
        throw new Error(`broken on attempt ${attempt}`);
      },
    };
    const jobs = await start(backend, [failing]);
    const id = await jobs.queue.enqueue(failing.name, { n: 1 });

    const dead = await eventually(
      () => jobs.queue.get(id),
      (job) => job?.state === 'dead',
    );
    expect(dead).toMatchObject({ id, name: failing.name, attempts: 3, maxAttempts: 3, lastError: 'broken on attempt 3' });
    expect(dead).not.toHaveProperty('payload');
    expect(runs.map((run) => run.attempt)).toEqual([1, 2, 3]);
    // exponential: the second wait is twice the first
    expect(runs[1]!.at - runs[0]!.at).toBeGreaterThanOrEqual(100);
    expect(runs[2]!.at - runs[1]!.at).toBeGreaterThanOrEqual(200);
    const [stats] = (await jobs.queue.stats()).filter((entry) => entry.queue === failing.name);
    expect(stats!.counts).toMatchObject({ dead: 1, waiting: 0, active: 0, delayed: 0 });
  });

  it('sends a job that fails for good to dead at once, its remaining attempts unused', async () => {
    const { backend, name } = await fresh();
    let runs = 0;
    const refused: JobDefinition<object> = {
      name: name('refused'),
      attempts: 5,
      backoffMs: 10,
      handle: async () => {
        runs += 1;
        throw new PermanentJobError('the provider refused the request');
      },
    };
    const jobs = await start(backend, [refused]);
    const id = await jobs.queue.enqueue(refused.name, {});
    const dead = await eventually(
      () => jobs.queue.get(id),
      (job) => job?.state === 'dead',
    );
    expect(dead).toMatchObject({ attempts: 1, maxAttempts: 5, lastError: 'the provider refused the request' });
    expect(runs).toBe(1);
  });

  it('waits as long as a RetryLaterError says before the next run, instead of the usual backoff', async () => {
    const { backend, name } = await fresh();
    const runs: number[] = [];
    const throttled: JobDefinition<object> = {
      name: name('throttled'),
      attempts: 2,
      backoffMs: 10,
      handle: async (_payload, { attempt }) => {
        runs.push(Date.now());
        if (attempt === 1) throw new RetryLaterError('429: retry after 700 ms', 700);
      },
    };
    const jobs = await start(backend, [throttled]);
    const id = await jobs.queue.enqueue(throttled.name, {});
    await eventually(
      () => jobs.queue.get(id),
      (job) => job?.state === 'completed',
    );
    expect(runs).toHaveLength(2);
    // the backoff alone would have waited 10 ms
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(700);
  });

  it('enqueues a job id once, however many times it is enqueued', async () => {
    const { backend, name } = await fresh();
    const payloads: string[] = [];
    const once: JobDefinition<{ text: string }> = { name: name('once'), handle: async ({ text }) => void payloads.push(text) };
    const producer = await start(backend, [once], { workers: false });
    const first = await producer.queue.enqueue(once.name, { text: 'first' }, { jobId: 'welcome-42' });
    const second = await producer.queue.enqueue(once.name, { text: 'second' }, { jobId: 'welcome-42' });
    expect(second).toBe(first);
    expect((await producer.queue.stats())[0]!.counts.waiting).toBe(1);

    const consumer = await start(backend, [once]);
    await eventually(
      () => consumer.queue.get(first),
      (job) => job?.state === 'completed',
    );
    expect(payloads).toEqual(['first']);
  });

  it('reports progress while the job runs', async () => {
    const { backend, name } = await fresh();
    const release = gate();
    const slow: JobDefinition<Record<string, never>> = {
      name: name('progress'),
      handle: async (_payload, { progress }) => {
        await progress(40);
        await release.opened;
        await progress(100);
      },
    };
    const jobs = await start(backend, [slow]);
    const id = await jobs.queue.enqueue(slow.name, {});
    const running = await eventually(
      () => jobs.queue.get(id),
      (job) => job?.progress === 40,
    );
    expect(running!.state).toBe('active');
    expect(running!.startedAt).toBeInstanceOf(Date);
    release.open();
    const done = await eventually(
      () => jobs.queue.get(id),
      (job) => job?.state === 'completed',
    );
    expect(done).toMatchObject({ progress: 100, attempts: 1, lastError: null });
    expect(done!.finishedAt!.getTime()).toBeGreaterThanOrEqual(done!.startedAt!.getTime());
  });

  it('runs at most `concurrency` jobs of a kind at once', async () => {
    const { backend, name } = await fresh();
    const release = gate();
    let running = 0;
    let most = 0;
    const parallel: JobDefinition<{ n: number }> = {
      name: name('parallel'),
      concurrency: 3,
      handle: async () => {
        running += 1;
        most = Math.max(most, running);
        await release.opened;
        running -= 1;
      },
    };
    const jobs = await start(backend, [parallel]);
    const ids = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => jobs.queue.enqueue(parallel.name, { n })));
    // BullMQ counts a job active a moment before its handler starts: wait for both
    await eventually(
      () => jobs.queue.stats(),
      ([stats]) => stats!.counts.active === 3 && stats!.counts.waiting === 3 && running === 3,
    );
    expect(running).toBe(3);
    release.open();
    await eventually(
      () => Promise.all(ids.map((id) => jobs.queue.get(id))),
      (all) => all.every((job) => job?.state === 'completed'),
    );
    expect(most).toBe(3);
  });

  it('runs each tick of a schedule once, with two instances on one queue', async () => {
    const { backend, name } = await fresh();
    const ticks: Array<{ instance: string; jobId: string }> = [];
    const scheduled = (instance: string): JobDefinition<Record<string, never>> => ({
      name: name('tick'),
      schedule: { everyMs: 150 },
      concurrency: 2,
      handle: async (_payload, { jobId }: JobContext) => void ticks.push({ instance, jobId }),
    });
    await start(backend, [scheduled('a')]);
    await start(backend, [scheduled('b')]);
    await eventually(
      () => ticks.length,
      (count) => count >= 8,
    );
    const ids = ticks.map((tick) => tick.jobId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('lets a running job finish at shutdown, and takes no new one', async () => {
    const { backend, name } = await fresh();
    const release = gate();
    const started = gate();
    const runs: number[] = [];
    const work: JobDefinition<{ n: number }> = {
      name: name('finish'),
      handle: async ({ n }) => {
        started.open();
        await release.opened;
        runs.push(n);
      },
    };
    const jobs = await start(backend, [work]);
    const first = await jobs.queue.enqueue(work.name, { n: 1 });
    await started.opened;
    const stopping = jobs.runtime.stop(20_000);
    const second = await jobs.queue.enqueue(work.name, { n: 2 });
    release.open();
    expect(await stopping).toBe(true);
    expect(runs).toEqual([1]);
    expect((await jobs.queue.get(first))!.state).toBe('completed');
    expect((await jobs.queue.get(second))!.state).toBe('waiting');
  });

  it('abandons a job still running at the shutdown deadline: it goes back to the queue and runs elsewhere', async () => {
    const { backend, name } = await fresh();
    const started = gate();
    const finishedBy: string[] = [];
    let abortedInA = false;
    const stuck = (instance: string): JobDefinition<Record<string, never>> => ({
      name: name('stuck'),
      handle: async (_payload, { signal }) => {
        if (instance === 'a') {
          started.open();
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
          abortedInA = true;
          throw new Error('abandoned');
        }
        finishedBy.push(instance);
      },
    });
    const a = await start(backend, [stuck('a')], { lockDurationMs: 1_000 });
    const id = await a.queue.enqueue(stuck('a').name, {});
    await started.opened;
    expect(await a.runtime.stop(50)).toBe(false);
    expect(abortedInA).toBe(true);

    const b = await start(backend, [stuck('b')], { lockDurationMs: 1_000 });
    await eventually(
      () => b.queue.get(id),
      (job) => job?.state === 'completed',
    );
    expect(finishedBy).toEqual(['b']);
  });

  it('with workers off, enqueues and schedules but runs nothing', async () => {
    const { backend, name } = await fresh();
    const ranOn: string[] = [];
    const kindOf = (instance: string): JobDefinition<Record<string, never>> => ({ name: name('off'), handle: async () => void ranOn.push(instance) });
    const api = await start(backend, [kindOf('api')], { workers: false });
    const id = await api.queue.enqueue(kindOf('api').name, {});
    await start(backend, [kindOf('worker')]);
    await eventually(
      () => api.queue.get(id),
      (job) => job?.state === 'completed',
    );
    expect(ranOn).toEqual(['worker']);
  });

  it('fails a run that exceeds its timeout, and retries it', async () => {
    const { backend, name } = await fresh();
    const attempts: number[] = [];
    const slow: JobDefinition<Record<string, never>> = {
      name: name('timeout'),
      attempts: 2,
      backoffMs: 10,
      timeoutMs: 100,
      handle: async (_payload, { attempt, signal }) => {
        attempts.push(attempt);
        if (attempt === 1) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      },
    };
    const jobs = await start(backend, [slow]);
    const id = await jobs.queue.enqueue(slow.name, {});
    const done = await eventually(
      () => jobs.queue.get(id),
      (job) => job?.state === 'completed',
    );
    expect(attempts).toEqual([1, 2]);
    expect(done).toMatchObject({ attempts: 2, lastError: 'did not finish within 100 ms' });
  });

  it('knows no job by an unknown id', async () => {
    const { backend, name } = await fresh();
    const jobs = await start(backend, [{ name: name('known'), handle: async () => undefined }], { workers: false });
    expect(await jobs.queue.get('nope:1')).toBeNull();
    expect(await jobs.queue.get(`${name('known')}:999`)).toBeNull();
    expect(await jobs.queue.get('no-separator')).toBeNull();
    await expect(jobs.queue.enqueue('undefined.kind', {})).rejects.toThrow(/no job is defined/);
  });
});
