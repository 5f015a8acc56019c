import { normalizeIP } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import type { Clock } from '../../infra/clock.js';

/** At most `max` in any `windowMs`. */
export interface Limit {
  max: number;
  windowMs: number;
}

export interface ChatSocketLimitSettings {
  userMessages: Limit[];
  anonymousMessages: Limit[];
  ipMessages: Limit[];
  globalMessages: Limit[];
  userConnections: Limit;
  /** Anonymous sessions started from one IP (a session id costs nothing to make up). */
  anonymousConnections: Limit;
  ipConnections: Limit;
  /** Connections open at once, every instance together. */
  maxOpenConnections: number;
  authFailures: Limit;
  authBlockMs: number;
  /** An open connection's entry lapses when its instance has not refreshed it for this long (the instance died). */
  openConnectionTtlMs: number;
}

/** Who sends: a signed-in user, or an anonymous session (by the hash of its secret id). */
export type Sender = { userId: string } | { anonymousKey: string };

/** A refusal: which limit, and when to try again. */
export interface Refusal {
  limit: string;
  retryAfterMs: number;
}

export type ConnectionAdmission =
  { admitted: true } | { admitted: false; reason: 'ip_blocked' | 'rate_limited' | 'too_many_connections'; retryAfterMs: number };

const PREFIX = 'chat:ws:';
/** An IP as the limits count it: an IPv6 client by its /64, which one host can fill with addresses (as the HTTP rate limit counts it). */
const ipScope = (ip: string) => normalizeIP(ip);
const keys = {
  /** ZSET of one sliding window: member per event, scored by its time (ms). */
  messages: (scope: string, windowMs: number) => `${PREFIX}messages:${scope}:${windowMs}`,
  connections: (scope: string) => `${PREFIX}connections:${scope}`,
  /** ZSET of the open connections of every instance: connection id, scored by when its entry lapses. */
  open: `${PREFIX}open`,
  authFailures: (ip: string) => `${PREFIX}auth-failures:${ip}`,
  /** STRING: until when (ms) the IP may not open /ws. */
  blocked: (ip: string) => `${PREFIX}blocked:${ip}`,
  /** STRING: until when (ms) no other event of this kind about this IP is written. */
  sampled: (kind: string, ip: string) => `${PREFIX}sampled:${kind}:${ip}`,
};

/**
 * Sliding windows, all or nothing: KEYS are the windows, ARGV[1] the time, ARGV[2] the new
 * entry's member, then max and window (ms) per key. When every window has room the entry goes
 * into each; otherwise none changes and the answer is the window (1-based) that frees last,
 * with how long until it does.
 */
const ADMIT = `
local now = tonumber(ARGV[1])
local refused, wait = 0, 0
for i, key in ipairs(KEYS) do
  local max, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= max then
    local freeing = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
    local frees = tonumber(freeing[2]) + window - now
    if frees > wait or refused == 0 then refused, wait = i, frees end
  end
end
if refused > 0 then return { refused, wait } end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return { 0, 0 }
`;

/**
 * A new connection from an IP: KEYS blocked, the IP's connection window, the open set; ARGV
 * now, connection id, the window's max and length, the most open at once, the entry's TTL.
 * Answers [0] admitted, [1, ms] blocked, [2, ms] over the IP's window, [3] too many open.
 */
const ADMIT_CONNECTION = `
local now = tonumber(ARGV[1])
local blockedUntil = tonumber(redis.call('GET', KEYS[1]) or '0')
if blockedUntil > now then return { 1, blockedUntil - now } end
local max, window = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[2])
if count >= max then
  local freeing = redis.call('ZRANGE', KEYS[2], count - max, count - max, 'WITHSCORES')
  return { 2, tonumber(freeing[2]) + window - now }
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return { 3, 0 } end
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('PEXPIRE', KEYS[2], window)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[2])
return { 0, 0 }
`;

/**
 * A failed authentication: KEYS the IP's failures, its block; ARGV now, member, max, window,
 * block length. The failure that fills the window blocks the IP (answers 1) and starts a new
 * count for when the block ends.
 */
const AUTH_FAILED = `
local now, max, window, block = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], window)
if redis.call('ZCARD', KEYS[1]) < max then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], now + block, 'PX', block)
return 1
`;

/** Whether this event may be written: at most one per key and window (ARGV now, window). */
const SAMPLE = `
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') > now then return 0 end
redis.call('SET', KEYS[1], now + window, 'PX', window)
return 1
`;

/** ADMIT for a given number of windows (ioredis-mock needs the number of keys fixed per command). */
type AdmitCommand = (...args: Array<string | number>) => Promise<[number, number]>;

interface ChatLimitRedis extends Redis {
  parleyChatAdmitConnection(
    blocked: string,
    ipConnections: string,
    open: string,
    now: number,
    member: string,
    max: number,
    windowMs: number,
    maxOpen: number,
    ttlMs: number,
  ): Promise<[number, number]>;
  parleyChatAuthFailed(failures: string, blocked: string, now: number, member: string, max: number, windowMs: number, blockMs: number): Promise<number>;
  parleyChatSample(key: string, now: number, windowMs: number): Promise<number>;
}

/**
 * The /ws limits, kept in Redis so that every instance counts the same events (on the
 * in-process emulation: one instance). Windows slide: each holds the times of its events,
 * and the time is the injected clock's.
 */
export class ChatSocketLimits {
  private readonly redis: ChatLimitRedis;
  private sequence = 0;

  constructor(
    private readonly dependencies: { redis: Redis; clock: Clock; instanceId: string },
    private readonly settings: ChatSocketLimitSettings,
  ) {
    const { redis } = dependencies;
    redis.defineCommand('parleyChatAdmitConnection', { numberOfKeys: 3, lua: ADMIT_CONNECTION });
    redis.defineCommand('parleyChatAuthFailed', { numberOfKeys: 2, lua: AUTH_FAILED });
    redis.defineCommand('parleyChatSample', { numberOfKeys: 1, lua: SAMPLE });
    this.redis = redis as ChatLimitRedis;
  }

  private now(): number {
    return this.dependencies.clock.now().getTime();
  }

  /** A member no other event of any instance has. */
  private member(): string {
    this.sequence += 1;
    return `${this.dependencies.instanceId}:${this.sequence}`;
  }

  private admitCommand(windows: number): AdmitCommand {
    const name = `parleyChatAdmit${windows}`;
    const commands = this.redis as unknown as Record<string, AdmitCommand | undefined>;
    if (!commands[name]) this.redis.defineCommand(name, { numberOfKeys: windows, lua: ADMIT });
    return commands[name]!.bind(this.redis);
  }

  /** Takes one event in every window, or none when one is full (the answer names it). */
  private async admit(windows: Array<{ name: string; key: string; limit: Limit }>): Promise<Refusal | null> {
    const args = windows.flatMap(({ limit }) => [limit.max, limit.windowMs]);
    const [refused, wait] = await this.admitCommand(windows.length)(...windows.map(({ key }) => key), this.now(), this.member(), ...args);
    return refused ? { limit: windows[refused - 1]!.name, retryAfterMs: wait } : null;
  }

  /** Before the upgrade: the IP is not blocked, has connections left this window, and there is room. Admitted, the connection counts as open. */
  async admitConnection(ip: string, connectionId: string): Promise<ConnectionAdmission> {
    const { ipConnections, maxOpenConnections, openConnectionTtlMs } = this.settings;
    const [outcome, wait] = await this.redis.parleyChatAdmitConnection(
      keys.blocked(ipScope(ip)),
      keys.connections(`ip:${ipScope(ip)}`),
      keys.open,
      this.now(),
      connectionId,
      ipConnections.max,
      ipConnections.windowMs,
      maxOpenConnections,
      openConnectionTtlMs,
    );
    if (outcome === 0) return { admitted: true };
    return { admitted: false, reason: outcome === 1 ? 'ip_blocked' : outcome === 2 ? 'rate_limited' : 'too_many_connections', retryAfterMs: wait };
  }

  /** Keeps these connections (this instance's open ones) counted as open. */
  async keepOpen(connectionIds: string[]): Promise<void> {
    if (!connectionIds.length) return;
    const lapses = this.now() + this.settings.openConnectionTtlMs;
    await this.redis.zadd(keys.open, ...connectionIds.flatMap((id) => [lapses, id]));
  }

  async closed(connectionId: string): Promise<void> {
    await this.redis.zrem(keys.open, connectionId);
  }

  /** A connection signing in as this user. */
  async admitUser(userId: string): Promise<Refusal | null> {
    return this.admit([{ name: 'user_connections', key: keys.connections(`user:${userId}`), limit: this.settings.userConnections }]);
  }

  /** A new anonymous session from this IP. */
  async admitAnonymous(ip: string): Promise<Refusal | null> {
    return this.admit([{ name: 'anonymous_connections', key: keys.connections(`anonymous-ip:${ipScope(ip)}`), limit: this.settings.anonymousConnections }]);
  }

  /** One message: the sender's windows, the IP's and everyone's. */
  async admitMessage(sender: Sender, ip: string): Promise<Refusal | null> {
    const [kind, scope, limits] =
      'userId' in sender
        ? (['user', `user:${sender.userId}`, this.settings.userMessages] as const)
        : (['anonymous', `anonymous:${sender.anonymousKey}`, this.settings.anonymousMessages] as const);
    const window = (name: string, scopeKey: string, limit: Limit) => ({ name: `${name}_messages`, key: keys.messages(scopeKey, limit.windowMs), limit });
    return this.admit([
      ...limits.map((limit) => window(kind, scope, limit)),
      ...this.settings.ipMessages.map((limit) => window('ip', `ip:${ipScope(ip)}`, limit)),
      ...this.settings.globalMessages.map((limit) => window('global', 'all', limit)),
    ]);
  }

  /** Counts a failed authentication; true when it is the one that blocks the IP. */
  async authFailed(ip: string): Promise<boolean> {
    const { authFailures, authBlockMs } = this.settings;
    const blocked = await this.redis.parleyChatAuthFailed(
      keys.authFailures(ipScope(ip)),
      keys.blocked(ipScope(ip)),
      this.now(),
      this.member(),
      authFailures.max,
      authFailures.windowMs,
      authBlockMs,
    );
    return blocked === 1;
  }

  get authBlockMs(): number {
    return this.settings.authBlockMs;
  }

  /** Whether an event of this kind about this IP may be written now: one per window. */
  async sample(kind: string, ip: string, windowMs: number): Promise<boolean> {
    return (await this.redis.parleyChatSample(keys.sampled(kind, ipScope(ip)), this.now(), windowMs)) === 1;
  }
}
