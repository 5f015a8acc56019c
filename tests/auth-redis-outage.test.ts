import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { redisServerAvailable, startRedisServer } from './helpers/redis-server.js';
import { until } from './helpers/wait.js';

describe.skipIf(!redisServerAvailable)('Redis down', () => {
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let t: TestApp;
  beforeAll(async () => {
    redis = await startRedisServer();
    t = await buildTestApp({ env: { REDIS_URL: redis.url, AUTH_REGISTER_LIMIT: '10/1h' } });
  });
  afterAll(async () => {
    await t.close();
    await redis.stop();
  });

  const signUp = () =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      remoteAddress: '198.51.100.77',
      payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'd', platform: 'web' },
    });

  it('fails the limits that protect accounts closed with 503, keeps token checks working, and counts right once Redis is back', async () => {
    const account = await register(t.app, { deviceId: 'before-the-outage' });
    await redis.stop();
    await until(() => t.container.redis.client.status !== 'ready', { timeoutMs: 10_000, message: 'the app sees Redis go down' });

    const signUps = [];
    for (let i = 0; i < 12; i += 1) signUps.push(await signUp());
    expect(signUps.map((res) => res.statusCode)).toEqual(Array.from({ length: 12 }, () => 503));
    expect(signUps[0]!.json().error.code).toBe('dependency_unavailable');
    const guarded = [
      { url: '/auth/login', payload: { email: account.email, password: PASSWORD, deviceId: 'd', platform: 'web' } },
      { url: '/auth/forgot-password', payload: { email: account.email } },
      { url: '/auth/reset-password', payload: { token: 'x'.repeat(43), newPassword: 'a new passphrase' } },
      { url: '/auth/refresh', payload: { refreshToken: account.refreshToken } },
    ];
    for (const { url, payload } of guarded) {
      const res = await t.app.inject({ method: 'POST', url, payload });
      expect({ url, status: res.statusCode, code: res.json().error?.code }).toEqual({ url, status: 503, code: 'dependency_unavailable' });
    }
    // routes that do not need Redis keep answering: token checks fall back to PostgreSQL
    expect((await injectAs(t.app, account, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
    expect((await injectAs(t.app, account, { method: 'GET', url: '/users/me' })).statusCode).toBe(200);
    const [{ users }] = await t.container.db.query('SELECT count(*)::int AS users FROM users');
    expect(users).toBe(1);

    await redis.start();
    await until(() => t.container.redis.client.status === 'ready', { timeoutMs: 10_000, message: 'the app reconnects to Redis' });
    // none of the refused attempts was counted: the IP gets its full 10
    const after = [];
    for (let i = 0; i < 11; i += 1) after.push((await signUp()).statusCode);
    expect(after).toEqual([...Array.from({ length: 10 }, () => 201), 429]);
  });
});
