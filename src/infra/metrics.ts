import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
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
  return { registry, observeHttpRequest };
}
