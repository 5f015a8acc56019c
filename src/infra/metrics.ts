import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobObserver, JobQueue } from './jobs.js';

export interface Metrics extends JobObserver {
  registry: Registry;
  /** Reads the job queues' depth (per queue and state) on every scrape. */
  watchJobQueue(queue: Pick<JobQueue, 'stats'>): void;
  /** Records one HTTP request's duration under its route pattern, method and status. */
  observeHttpRequest(route: string, method: string, statusCode: number, seconds: number): void;
}

/** One registry per container, so two servers in one process (tests) keep separate counts. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method and status code',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // prom-client hashes the label object on every observe; resolve each label set once.
  const series = new Map<string, ReturnType<typeof httpRequestDuration.labels>>();
  const observeHttpRequest = (route: string, method: string, statusCode: number, seconds: number) => {
    const key = `${method} ${statusCode} ${route}`;
    let child = series.get(key);
    if (!child) {
      child = httpRequestDuration.labels(route, method, String(statusCode));
      series.set(key, child);
    }
    child.observe(seconds);
  };

  const jobDuration = new Histogram({
    name: 'job_duration_seconds',
    help: 'Background job run duration by job name and outcome (completed or failed)',
    labelNames: ['job', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [registry],
  });
  const jobFailures = new Counter({
    name: 'job_failures_total',
    help: 'Failed background job runs by job name; final="true" when it was the last attempt (the job is dead)',
    labelNames: ['job', 'final'] as const,
    registers: [registry],
  });
  let jobQueue: Pick<JobQueue, 'stats'> | undefined;
  new Gauge({
    name: 'job_queue_depth',
    help: 'Jobs per queue and state (waiting, delayed, active, completed, dead)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (!jobQueue) return;
      for (const { queue, counts } of await jobQueue.stats()) {
        for (const [state, count] of Object.entries(counts)) this.labels(queue, state).set(count);
      }
    },
  });
  return {
    registry,
    observeHttpRequest,
    watchJobQueue: (queue) => (jobQueue = queue),
    jobFinished: (name, outcome, seconds, final) => {
      jobDuration.labels(name, outcome).observe(seconds);
      if (outcome === 'failed') jobFailures.labels(name, String(final)).inc();
    },
  };
}
