import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { PASSWORD, register, uniqueEmail } from './helpers/auth.js';

let t: TestApp;
beforeAll(async () => {
  // the documented limits, not the loose ones other tests use
  t = await buildTestApp({
    env: { AUTH_LOGIN_LIMIT: '5/15m', AUTH_REGISTER_LIMIT: '10/1h', AUTH_FORGOT_PASSWORD_LIMIT: '3/1h', AUTH_ACCOUNT_FAILURE_LIMIT: '3/15m' },
  });
});
afterAll(() => t.close());

const attempt = (email: string, remoteAddress: string, password = 'wrong password') =>
  t.app.inject({ method: 'POST', url: '/auth/login', remoteAddress, payload: { email, password, deviceId: 'd', platform: 'web' } });

describe('abuse limits', () => {
  it('answers the 6th login from one IP in 15 minutes with 429 and Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await attempt(uniqueEmail(), '198.51.100.1')).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const limited = await attempt(uniqueEmail(), '198.51.100.1');
    expect(limited.json().error.code).toBe('rate_limited');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
  });

  it('slows an attacker spread over many IPs: the account answers 429 after 3 failures, even to the right password', async () => {
    const { email } = await register(t.app, {});
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) expect((await attempt(email, ip)).statusCode).toBe(401);
    const locked = await attempt(email, '203.0.113.4', PASSWORD);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('rate_limited');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // another account is not affected
    const other = await register(t.app, {});
    expect((await attempt(other.email, '203.0.113.5', PASSWORD)).statusCode).toBe(200);
  });

  it('allows 10 registrations per IP per hour', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i += 1) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        remoteAddress: '198.51.100.2',
        payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'd', platform: 'web' },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.filter((status) => status === 201)).toHaveLength(10);
    expect(statuses[10]).toBe(429);
  });

  it('allows 3 password-reset requests per IP per hour', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      statuses.push(
        (await t.app.inject({ method: 'POST', url: '/auth/forgot-password', remoteAddress: '198.51.100.3', payload: { email: uniqueEmail() } })).statusCode,
      );
    }
    expect(statuses).toEqual([202, 202, 202, 429]);
  });
});
