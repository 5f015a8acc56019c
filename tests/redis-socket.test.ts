import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { redisKeys } from '../src/infra/redis-keys.js';
import { buildTestApp, capturingLogger, type TestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { redisServerAvailable, startRedisOnSocket } from './helpers/redis-server.js';

const PRODUCTION = {
  NODE_ENV: 'production',
  SESSION_SECRET: 'a production session secret of 32+ chars',
  METRICS_TOKEN: 'a production metrics token',
  OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32),
};

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'parley-redis-socket-'));
}

describe.skipIf(!redisServerAvailable)('Redis over a unix socket (REDIS_SOCKET_PATH)', () => {
  let redis: Awaited<ReturnType<typeof startRedisOnSocket>>;
  let direct: Redis;
  let t: TestApp;
  beforeAll(async () => {
    redis = await startRedisOnSocket(path.join(tempDir(), 'redis.sock'));
    direct = new Redis({ path: redis.socketPath });
    // the outage test stops the server: this client reconnects on its own afterwards
    direct.on('error', () => undefined);
    // REDIS_URL unset: the socket is the only way to this Redis (it listens on no TCP port)
    t = await buildTestApp({ env: { REDIS_URL: undefined, REDIS_SOCKET_PATH: redis.socketPath } });
  });
  afterAll(async () => {
    await t.close();
    direct.disconnect();
    await redis.stop();
  });

  it("keeps the app's data in the Redis behind the socket", async () => {
    expect(t.container.redis.embedded).toBe(false);
    await register(t.app);
    // the per-IP limits of /auth/register count in Redis: their keys are in the socket's server
    const keys = await direct.keys('*');
    expect(keys.some((key) => key.startsWith(redisKeys.rateLimitNamespace))).toBe(true);

    await direct.set('parley-test:written-outside', 'through the socket');
    expect(await t.container.redis.client.get('parley-test:written-outside')).toBe('through the socket');
  });

  it('reports Redis not ready when the server behind the socket stops, and ready once it is back', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    await redis.stop();
    try {
      const down = await eventually(
        () => t.app.inject({ method: 'GET', url: '/ready' }),
        (res) => res.statusCode === 503,
      );
      expect(down.json().error.details.checks).toEqual({ database: 'ok', redis: 'unavailable' });
    } finally {
      await redis.start();
    }
    await eventually(
      () => t.app.inject({ method: 'GET', url: '/ready' }),
      (res) => res.statusCode === 200,
    );
  });

  it('runs the job queue on it with JOBS_BACKEND=redis', async () => {
    const prefix = 'parley-test-socket-jobs';
    const jobs = await buildTestApp({ env: { REDIS_URL: undefined, REDIS_SOCKET_PATH: redis.socketPath, JOBS_BACKEND: 'redis', JOBS_PREFIX: prefix } });
    try {
      // the schedules of the modules' periodic jobs are written to the queue at start
      const keys = await eventually(
        () => direct.keys(`${prefix}:*`),
        (found) => found.length > 0,
      );
      expect(keys.length).toBeGreaterThan(0);
    } finally {
      await jobs.close();
    }
  });
});

describe('a missing Redis socket', () => {
  it('in development: one warning at start, then the in-process emulation, and the app works', async () => {
    const missing = path.join(tempDir(), 'redis.sock');
    const { logger, lines } = capturingLogger('info');
    const t = await buildTestApp({ env: { NODE_ENV: 'development', REDIS_URL: undefined, REDIS_SOCKET_PATH: missing }, logger });
    try {
      const warnings = lines.filter((line) => line.level === 40 && String(line.msg).includes('REDIS_SOCKET_PATH'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toBe(
        `REDIS_SOCKET_PATH: no Redis socket at ${missing}: running on the in-process Redis emulation (single instance, data lost on restart)`,
      );
      expect(t.container.redis.embedded).toBe(true);
      expect((await t.app.inject({ method: 'GET', url: '/ready' })).json()).toMatchObject({ status: 'ready', checks: { redis: 'ok' } });
      const account = await register(t.app);
      expect(account.accessToken).toEqual(expect.any(String));
    } finally {
      await t.close();
    }
  });

  it('in production: refuses to start, in one line naming the socket', async () => {
    const missing = path.join(tempDir(), 'redis.sock');
    const attempt = buildTestApp({ env: { ...PRODUCTION, REDIS_URL: undefined, REDIS_SOCKET_PATH: missing } });
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(attempt).rejects.toThrow(
      new RegExp(`^Invalid configuration: REDIS_SOCKET_PATH: no Redis socket at ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(production[^\\n]*\\)$`),
    );
  });

  it('counts a plain file at the path as missing (no Redis listens on it)', async () => {
    const notASocket = path.join(tempDir(), 'redis.sock');
    writeFileSync(notASocket, '');
    await expect(buildTestApp({ env: { ...PRODUCTION, REDIS_URL: undefined, REDIS_SOCKET_PATH: notASocket } })).rejects.toThrow(/no Redis socket at/);
  });

  it('cannot fall back with JOBS_BACKEND=redis, even in development (the emulation cannot run the job queue)', async () => {
    const missing = path.join(tempDir(), 'redis.sock');
    await expect(buildTestApp({ env: { NODE_ENV: 'development', REDIS_URL: undefined, REDIS_SOCKET_PATH: missing, JOBS_BACKEND: 'redis' } })).rejects.toThrow(
      /JOBS_BACKEND=redis cannot run on the in-process emulation/,
    );
  });
});

describe('REDIS_SOCKET_PATH with other settings', () => {
  it('refuses REDIS_URL and REDIS_SOCKET_PATH together, and takes the socket for JOBS_BACKEND=redis', () => {
    const cwd = tempDir();
    expect(() => loadConfig({ env: { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SOCKET_PATH: '/run/redis/redis.sock' }, cwd })).toThrow(
      /^Invalid configuration: REDIS_URL and REDIS_SOCKET_PATH are both set: keep one/,
    );
    expect(loadConfig({ env: { REDIS_SOCKET_PATH: '/run/redis/redis.sock', JOBS_BACKEND: 'redis' }, cwd }).JOBS_BACKEND).toBe('redis');
    expect(() => loadConfig({ env: { JOBS_BACKEND: 'redis' }, cwd })).toThrow(/JOBS_BACKEND=redis needs REDIS_URL or REDIS_SOCKET_PATH/);
  });
});
