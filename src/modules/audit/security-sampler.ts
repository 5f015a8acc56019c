import { normalizeIP } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import type { Clock } from '../../infra/clock.js';
import { redisKeys } from '../../infra/redis-keys.js';

/** Whether this event may be written: at most one per key and window (ARGV now, window; times in ms of the injected clock). */
const SAMPLE = `
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') > now then return 0 end
redis.call('SET', KEYS[1], now + window, 'PX', window)
return 1
`;

interface SamplerRedis extends Redis {
  parleySecuritySample(key: string, now: number, windowMs: number): Promise<number>;
}

/**
 * One security event per IP and kind per window. The mark lives in Redis, so the limit holds
 * across instances (a flood spread over the fleet still writes one entry a minute); an IPv6
 * client counts by its /64, as the rate limit counts it.
 */
export class SecurityEventSampler {
  private readonly redis: SamplerRedis;

  constructor(
    redis: Redis,
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {
    redis.defineCommand('parleySecuritySample', { numberOfKeys: 1, lua: SAMPLE });
    this.redis = redis as SamplerRedis;
  }

  async admit(kind: string, ip: string): Promise<boolean> {
    return (await this.redis.parleySecuritySample(redisKeys.securityEventSampled(kind, normalizeIP(ip)), this.clock.now().getTime(), this.windowMs)) === 1;
  }
}
