import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { Config } from '../config/load.js';
import { failFastRedisStore } from '../infra/rate-limit-store.js';
import { redisKeys } from '../infra/redis-keys.js';
import type { RedisConnection } from '../infra/redis.js';
import { AppError, RateLimitedError } from '../shared/errors.js';
import type { SecurityEventSink } from '../shared/security-events.js';
import type { App } from './types.js';

/** The global per-IP limit; routes that protect accounts set their own, stricter ones. */
export async function registerRateLimit(
  app: App,
  { config, redis, security }: { config: Config; redis: RedisConnection; security: SecurityEventSink },
): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: config.RATE_LIMIT_REQUESTS,
    timeWindow: config.RATE_LIMIT_WINDOW,
    // On real Redis the counters are shared by every instance. The in-process emulation runs
    // the store's Lua script in a JavaScript Lua VM (about 1 ms per request); it serves one
    // instance only anyway, so its counters stay in the plugin's in-memory store.
    ...(redis.embedded ? {} : { store: failFastRedisStore(redis.client, redisKeys.rateLimitNamespace) }),
    nameSpace: redisKeys.rateLimitNamespace,
    // The plugin's own key (the address, IPv6 by /64), except that a client that hung up while an
    // earlier hook awaited has no address left: its request ends here, answered to no one, instead
    // of failing inside the plugin as an unexpected error.
    keyGenerator: (request) => {
      const ip = request.ip as string | undefined;
      if (ip === undefined) throw new AppError('bad_request', 'The client closed the connection');
      return normalizeIP(ip);
    },
    // The global limit fails open when Redis is down (availability wins, /ready reports the
    // outage); the limits that protect accounts set skipOnError: false and answer 503.
    skipOnError: true,
    // Each refusal is a security event (sampled, written off the request's path); routes with
    // their own limit inherit this hook.
    onExceeded: (request) =>
      security.reportSecurityEvent({
        type: 'rate_limited',
        ip: request.ip,
        userAgent: request.headers['user-agent'],
        metadata: { route: `${request.method} ${request.routeOptions.url ?? request.url}`, limit: request.routeOptions.config.rateLimit ? 'route' : 'global' },
      }),
    errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
  });
}
