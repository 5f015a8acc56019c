import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { DataSource } from 'typeorm';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Clock } from '../../infra/clock.js';
import { safeEqual } from '../../shared/crypto.js';
import { DependencyUnavailableError, UnauthorizedError } from '../../shared/errors.js';
import { errorResponses } from '../../shared/responses.js';
import { healthSchema, metricsResponse, readySchema } from './schemas.js';

export interface OpsRoutesOptions {
  db: DataSource;
  redis: Redis;
  registry: Registry;
  clock: Clock;
  metricsToken?: string | undefined;
  /** How long each dependency may take to answer /ready. */
  readyTimeoutMs?: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Probes for load balancers and orchestrators, and Prometheus metrics. Never rate-limited. */
export const opsRoutes: FastifyPluginAsyncZod<OpsRoutesOptions> = async (app, { db, redis, registry, clock, metricsToken, readyTimeoutMs = 1_000 }) => {
  // Probes are polled every few seconds: limiting them would fail health checks, and logging
  // each one would drown the access log. Load balancers and scrapers reach the instance over
  // plain HTTP, so FORCE_HTTPS leaves them be.
  const probe = { rateLimit: false, accessLog: false, plainHttp: true } as const;

  app.get(
    '/health',
    {
      config: probe,
      schema: { tags: ['ops'], summary: 'Liveness: the process answers; touches no dependency', response: { 200: healthSchema } },
    },
    async () => ({ status: 'ok' as const, timestamp: clock.now().toISOString() }),
  );

  app.get(
    '/ready',
    {
      config: probe,
      schema: {
        tags: ['ops'],
        summary: 'Readiness: PostgreSQL and Redis answer',
        response: { 200: readySchema, ...errorResponses(503) },
      },
    },
    async () => {
      const [database, cache] = await Promise.allSettled([withTimeout(db.query('SELECT 1'), readyTimeoutMs), withTimeout(redis.ping(), readyTimeoutMs)]);
      const checks = { database: database.status === 'fulfilled' ? 'ok' : 'unavailable', redis: cache.status === 'fulfilled' ? 'ok' : 'unavailable' };
      const failed = Object.entries(checks)
        .filter(([, state]) => state !== 'ok')
        .map(([name]) => name);
      if (failed.length) throw new DependencyUnavailableError(`Not ready: ${failed.join(' and ')} unavailable`, { checks });
      return { status: 'ready' as const, checks: { database: 'ok' as const, redis: 'ok' as const } };
    },
  );

  app.get(
    '/metrics',
    {
      config: probe,
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics (process and HTTP request durations)',
        description: 'When METRICS_TOKEN is set (always in production), send it as a Bearer token.',
        response: { 200: metricsResponse, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      if (metricsToken && !safeEqual(request.headers.authorization ?? '', `Bearer ${metricsToken}`)) throw new UnauthorizedError('Metrics token required');
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );
};
