import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { injectAs, login, register } from './helpers/auth.js';
import { redisServerAvailable, startRedisServer } from './helpers/redis-server.js';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

const me = (app: TestApp, accessToken: string) => injectAs(app.app, accessToken, { method: 'GET', url: '/auth/me' });

describe('revocation lives in PostgreSQL', () => {
  it('keeps a logged-out token refused after Redis loses its data, on this instance and on one that never saw it', async () => {
    const phone = await register(t.app);
    const laptop = await login(t.app, phone.email);
    expect((await injectAs(t.app, phone, { method: 'POST', url: '/auth/logout' })).statusCode).toBe(204);
    await t.container.redis.client.flushdb();

    const res = await me(t, phone.accessToken);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('session_revoked');
    expect((await me(t, laptop.accessToken)).statusCode).toBe(200);
    const fresh = await buildTestApp({ env: { DATABASE_URL: await testDatabaseUrl() } });
    try {
      await fresh.container.redis.client.flushdb();
      expect((await me(fresh, phone.accessToken)).json().error.code).toBe('session_revoked');
      expect((await me(fresh, laptop.accessToken)).statusCode).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  it('keeps a banned account refused after Redis loses its data', async () => {
    const target = await register(t.app);
    await t.container.services.auth.ensureAdmin('moderator@parley.test', 'a moderator password');
    const [admin] = await t.container.db.query("SELECT id FROM users WHERE email = 'moderator@parley.test'");
    await t.container.services.admin.ban(admin.id, target.user.id, 'spam');
    await t.container.redis.client.flushdb();
    const res = await me(t, target.accessToken);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('account_banned');
  });
});

describe.skipIf(!redisServerAvailable)('a Redis that refuses writes', () => {
  it('makes logout an error instead of a silent 204, and the token is refused anyway', async () => {
    const redis = await startRedisServer();
    const app = await buildTestApp({ env: { REDIS_URL: redis.url } });
    const admin = new Redis(redis.url);
    try {
      const pair = await register(app.app);
      expect((await me(app, pair.accessToken)).statusCode).toBe(200);
      // out of memory: every write is refused (OOM), reads still answer
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      const logout = await injectAs(app.app, pair, { method: 'POST', url: '/auth/logout' });
      expect(logout.statusCode).toBe(503);
      expect(logout.json().error.code).toBe('dependency_unavailable');
      expect((await me(app, pair.accessToken)).json().error.code).toBe('session_revoked');
      // once Redis accepts writes again, the token is still dead
      await admin.config('SET', 'maxmemory', '0');
      expect((await injectAs(app.app, pair, { method: 'POST', url: '/auth/logout' })).statusCode).toBe(401);
    } finally {
      admin.disconnect();
      await app.close();
      await redis.stop();
    }
  });
});
