import { createRequire } from 'node:module';
import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { DependencyUnavailableError } from '../shared/errors.js';

type RedisStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => FastifyRateLimitStore;

// The plugin's own Redis store (its Lua script, its keys); the package declares no type for it.
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as RedisStoreCtor;

function unavailable(): DependencyUnavailableError {
  return new DependencyUnavailableError('Rate limits cannot be checked right now (Redis is unavailable); try again shortly');
}

class FailFastStore implements FastifyRateLimitStore {
  constructor(
    private readonly inner: FastifyRateLimitStore,
    private readonly redis: Redis,
  ) {}

  incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number, max: number): void {
    // Not connected: refuse at once rather than queue a count that would land late.
    if (this.redis.status !== 'ready') return callback(unavailable());
    this.inner.incr(key, (error, result) => (error ? callback(unavailable()) : callback(null, result)), timeWindow, max);
  }

  child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
    return new FailFastStore(this.inner.child(routeOptions), this.redis);
  }
}

/**
 * @fastify/rate-limit's Redis store whose failures are `dependency_unavailable` errors, raised
 * at once while Redis is disconnected. A route with `skipOnError: false` then answers 503 (its
 * limit fails closed); the others skip the limit (fail open).
 */
export function failFastRedisStore(redis: Redis, nameSpace: string): FastifyRateLimitStoreCtor {
  return class extends FailFastStore {
    // The plugin passes its merged settings, which carry these two flags too.
    constructor(options: FastifyRateLimitOptions & { continueExceeding?: boolean; exponentialBackoff?: boolean }) {
      super(new RedisStore(options.continueExceeding ?? false, options.exponentialBackoff ?? false, redis, nameSpace), redis);
    }
  };
}
