import { statSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import RedisMock from 'ioredis-mock';

/** The longest a Redis command may take before its caller gets an error. */
export const COMMAND_TIMEOUT_MS = 1_000;

export interface RedisConnection {
  client: Redis;
  /** True when this is the in-process emulation (single instance only). */
  embedded: boolean;
  close(): Promise<void>;
}

/** Where a real Redis listens: a redis:// URL, or the path of its unix socket. */
export type RedisTarget = { url: string } | { path: string };

/** An ioredis client of the target. */
export function connectRedis(target: RedisTarget, options: RedisOptions): Redis {
  return 'path' in target ? new Redis({ ...options, path: target.path }) : new Redis(target.url, options);
}

/** Whether a unix socket exists at `file` (a socket, not merely a file of that name). */
export function socketExists(file: string): boolean {
  try {
    return statSync(file).isSocket();
  } catch {
    return false;
  }
}

/**
 * A real Redis when a target is given, else ioredis-mock: the same ioredis API either way, so
 * the rest of Parley has one code path.
 */
export function createRedis(target: RedisTarget | undefined, onConnectionError: (error: Error) => void = () => undefined): RedisConnection {
  if (!target) {
    const client = new RedisMock();
    return { client, embedded: true, close: async () => void client.disconnect() };
  }
  const client = connectRedis(target, {
    // While Redis is down a command fails within a second instead of queueing: it gets no
    // reply in COMMAND_TIMEOUT_MS, and commands queued while disconnected are dropped at the
    // first failed reconnect (so none runs late, when its caller has long had an error).
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    connectTimeout: 3_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 1_000),
  });
  // ioredis emits an error on every reconnect attempt; report the first of each outage only.
  let reported = false;
  client.on('error', (error: Error) => {
    if (!reported) onConnectionError(error);
    reported = true;
  });
  client.on('ready', () => (reported = false));
  return {
    client,
    embedded: false,
    close: async () => {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
