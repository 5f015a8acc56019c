import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { until } from './helpers/wait.js';

const clock = manualClock();
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

describe('bans and sign-in', () => {
  it('refuses a login that is in flight when a ban lands (the ban is checked again in the login transaction)', async () => {
    const { email, user } = await register(t.app);
    const ban = new pg.Client({ connectionString: await testDatabaseUrl() });
    await ban.connect();
    try {
      // the transactional half of a ban, held open while the login runs
      await ban.query('BEGIN');
      await ban.query('UPDATE users SET is_banned = true, banned_at = now() WHERE id = $1', [user.id]);
      await ban.query("UPDATE device_sessions SET revoked_at = now(), revoke_reason = 'banned' WHERE user_id = $1 AND revoked_at IS NULL", [user.id]);
      let answered = false;
      const attempt = t.app
        .inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD, deviceId: 'racing', platform: 'web' } })
        .finally(() => (answered = true));
      // until the login either answered or waits on the ban's row lock
      await until(async () => answered || (await ban.query('SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted')).rows[0].n > 0, {
        message: 'the login waits on the row lock the ban holds',
      });
      await ban.query('COMMIT');
      const res = await attempt;
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('account_banned');
      const [{ live }] = await t.container.db.query('SELECT count(*)::int AS live FROM device_sessions WHERE user_id = $1 AND revoked_at IS NULL', [user.id]);
      expect(live).toBe(0);
      const [event] = await t.container.db.query("SELECT metadata FROM activity_logs WHERE user_id = $1 AND type = 'login_failed'", [user.id]);
      expect(event.metadata).toEqual({ reason: 'account_banned' });
    } finally {
      await ban.end();
    }
  });

  it('refuses a banned account with 403 account_banned on every authenticated route within a second, whatever its sessions say', async () => {
    const { accessToken, user } = await register(t.app);
    expect((await injectAs(t.app, accessToken, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
    // a ban whose session revocation this instance never heard of
    await t.container.db.query('UPDATE users SET is_banned = true WHERE id = $1', [user.id]);
    clock.advance(1_001);
    for (const [method, url] of [
      ['GET', '/auth/me'],
      ['GET', '/users/me'],
      ['GET', '/auth/sessions'],
      ['POST', '/auth/logout'],
    ] as const) {
      const res = await injectAs(t.app, accessToken, { method, url });
      expect({ url, status: res.statusCode, code: res.json().error?.code }).toEqual({ url, status: 403, code: 'account_banned' });
    }
  });

  it('refuses a ban made on another instance within a second', async () => {
    const other = await buildTestApp({ clock, env: { DATABASE_URL: await testDatabaseUrl() } });
    try {
      const { email } = await register(t.app);
      const pair = await login(t.app, email);
      expect((await injectAs(other.app, pair, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
      await t.container.services.auth.ensureAdmin('ops@parley.test', 'an admin password');
      const [admin] = await t.container.db.query("SELECT id FROM users WHERE email = 'ops@parley.test'");
      await t.container.services.admin.ban(admin.id, pair.user.id, 'spam');
      clock.advance(1_001);
      const res = await injectAs(other.app, pair, { method: 'GET', url: '/auth/me' });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('account_banned');
    } finally {
      await other.close();
    }
  });
});
