import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { eventually } from './helpers/jobs.js';

const DAY = 86_400_000;
const clock = manualClock();
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());
beforeEach(() => truncateAll(t));

const sessionOf = async (accessToken: string): Promise<string> => (await t.container.services.auth.tokens.verify(accessToken)).sessionId;
const sessionRow = async (id: string) =>
  (await t.container.db.query('SELECT last_used_at, expires_at, created_at FROM device_sessions WHERE id = $1', [id]))[0] as {
    last_used_at: Date;
    expires_at: Date;
    created_at: Date;
  };
const stats = (caller: Pair) => injectAs(t.app, caller, { method: 'GET', url: '/auth/sessions/stats' });
const extend = (caller: Pair, id: string) => injectAs(t.app, caller, { method: 'POST', url: `/auth/sessions/${id}/extend` });
const refresh = (refreshToken: string, key?: string) =>
  t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken }, headers: key ? { 'idempotency-key': key } : {} });
const loginWithKey = (email: string, key: string | undefined, body: Record<string, unknown> = {}) =>
  t.app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email, password: PASSWORD, deviceId: 'phone-9', platform: 'android', ...body },
    headers: key ? { 'idempotency-key': key } : {},
  });
const sessionCount = async (userId: string): Promise<number> =>
  (await t.container.db.query('SELECT count(*)::int AS n FROM device_sessions WHERE user_id = $1', [userId]))[0].n;

describe('GET /auth/sessions/stats', () => {
  it('counts my live sessions by platform, my latest activity and my sign-ins of the last 30 days, not anyone else’s', async () => {
    const me = await register(t.app, { platform: 'ios', deviceId: 'phone-1' });
    const web = await login(t.app, me.email, { platform: 'web', deviceId: 'laptop-1' });
    const tablet = await login(t.app, me.email, { platform: 'android', deviceId: 'tab-1' });
    await login(t.app, me.email, { platform: 'android', deviceId: 'tab-2' });
    await register(t.app, { platform: 'android', deviceId: 'other' });
    // one signed out, one opened long ago (still live)
    expect((await injectAs(t.app, me, { method: 'DELETE', url: `/auth/sessions/${await sessionOf(tablet.accessToken)}` })).statusCode).toBe(204);
    await t.container.db.query('UPDATE device_sessions SET created_at = $2 WHERE id = $1', [
      await sessionOf(web.accessToken),
      new Date(clock.now().getTime() - 40 * DAY),
    ]);
    const latest = new Date(clock.now().getTime() + 5_000);
    await t.container.db.query('UPDATE device_sessions SET last_used_at = $2 WHERE id = $1', [await sessionOf(me.accessToken), latest]);

    const res = await stats(me);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      active: 3,
      byPlatform: { ios: 1, android: 1, web: 1 },
      lastActivityAt: latest.toISOString(),
      createdLast30Days: 3,
    });
  });

  it('leaves expired sessions out and needs a signed-in caller', async () => {
    const me = await register(t.app);
    await t.container.db.query('UPDATE device_sessions SET expires_at = $1', [new Date(clock.now().getTime() - 1)]);
    const fresh = await login(t.app, me.email, { deviceId: 'laptop-2', platform: 'web' });
    expect((await stats(fresh)).json()).toMatchObject({ active: 1, byPlatform: { ios: 0, android: 0, web: 1 }, createdLast30Days: 2 });
    expect((await t.app.inject({ method: 'GET', url: '/auth/sessions/stats' })).statusCode).toBe(401);
  });
});

describe('POST /auth/sessions/:id/extend', () => {
  it('slides the expiry of my session and of its refresh token, which then works past the old expiry', async () => {
    const phone = await register(t.app, { deviceId: 'phone-1', platform: 'ios' });
    const phoneSession = await sessionOf(phone.accessToken);
    const before = await sessionRow(phoneSession);
    clock.advance(10 * DAY);
    const laptop = await login(t.app, phone.email);

    const res = await extend(laptop, phoneSession);
    expect(res.statusCode).toBe(200);
    const expected = new Date(clock.now().getTime() + 30 * DAY);
    expect(res.json()).toEqual({
      id: phoneSession,
      expiresAt: expected.toISOString(),
      endsAt: new Date(before.created_at.getTime() + 90 * DAY).toISOString(),
    });
    expect((await sessionRow(phoneSession)).expires_at.getTime()).toBe(expected.getTime());
    // past the expiry it had before the extension, the phone still refreshes
    clock.advance(25 * DAY);
    expect(clock.now().getTime()).toBeGreaterThan(before.expires_at.getTime());
    expect((await refresh(phone.refreshToken)).statusCode).toBe(200);
  });

  it('never goes past the absolute lifetime', async () => {
    const me = await register(t.app);
    const id = await sessionOf(me.accessToken);
    const createdAt = new Date(clock.now().getTime() - 80 * DAY);
    await t.container.db.query('UPDATE device_sessions SET created_at = $2 WHERE id = $1', [id, createdAt]);
    const res = await extend(me, id);
    expect(res.statusCode).toBe(200);
    const end = new Date(createdAt.getTime() + 90 * DAY).toISOString();
    expect(res.json()).toMatchObject({ expiresAt: end, endsAt: end });
    const [token] = await t.container.db.query('SELECT expires_at FROM refresh_tokens WHERE session_id = $1 AND NOT revoked', [id]);
    expect(token.expires_at.toISOString()).toBe(end);
  });

  it("answers 404 for another user's session exactly as for a missing one, and changes nothing", async () => {
    const me = await register(t.app);
    const other = await register(t.app);
    const otherSession = await sessionOf(other.accessToken);
    const before = await sessionRow(otherSession);
    clock.advance(60_000);
    const theirs = await extend(me, otherSession);
    const missing = await extend(me, randomUUID());
    expect(theirs.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    expect(theirs.json().error).toEqual(missing.json().error);
    expect((await sessionRow(otherSession)).expires_at.getTime()).toBe(before.expires_at.getTime());
  });

  it('refuses a signed-out session and an expired one with 409 session_ended', async () => {
    const me = await register(t.app, { deviceId: 'phone-1' });
    const laptop = await login(t.app, me.email);
    const phoneSession = await sessionOf(me.accessToken);
    await injectAs(t.app, laptop, { method: 'DELETE', url: `/auth/sessions/${phoneSession}` });
    const revoked = await extend(laptop, phoneSession);
    expect(revoked.statusCode).toBe(409);
    expect(revoked.json().error).toMatchObject({ code: 'session_ended', details: { reason: 'revoked' } });

    const tablet = await login(t.app, me.email, { deviceId: 'tab-1', platform: 'android' });
    const tabletSession = await sessionOf(tablet.accessToken);
    await t.container.db.query('UPDATE device_sessions SET expires_at = $2 WHERE id = $1', [tabletSession, new Date(clock.now().getTime() - 1)]);
    const expired = await extend(laptop, tabletSession);
    expect(expired.statusCode).toBe(409);
    expect(expired.json().error).toMatchObject({ code: 'session_ended', details: { reason: 'expired' } });
  });

  it('refuses an id that is not a uuid (400) and an anonymous caller (401)', async () => {
    const me = await register(t.app);
    expect((await extend(me, 'not-a-uuid')).json().error.code).toBe('validation_failed');
    expect((await t.app.inject({ method: 'POST', url: `/auth/sessions/${randomUUID()}/extend` })).statusCode).toBe(401);
  });
});

describe('session activity', () => {
  it('records last_used_at after an authenticated request, at most once a minute per session', async () => {
    const me = await register(t.app);
    const id = await sessionOf(me.accessToken);
    const marker = await register(t.app);
    const markerId = await sessionOf(marker.accessToken);

    clock.advance(5 * 60_000);
    const first = clock.now().getTime();
    expect((await injectAs(t.app, me, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
    await eventually(
      () => sessionRow(id),
      (row) => row.last_used_at.getTime() === first,
    );

    // 30 s later: throttled. The marker's first write is issued after it, so once it landed this one would have too.
    clock.advance(30_000);
    await injectAs(t.app, me, { method: 'GET', url: '/auth/me' });
    await injectAs(t.app, marker, { method: 'GET', url: '/auth/me' });
    await eventually(
      () => sessionRow(markerId),
      (row) => row.last_used_at.getTime() === clock.now().getTime(),
    );
    expect((await sessionRow(id)).last_used_at.getTime()).toBe(first);

    // a minute after the last write: written again
    clock.advance(31_000);
    await injectAs(t.app, me, { method: 'GET', url: '/auth/me' });
    await eventually(
      () => sessionRow(id),
      (row) => row.last_used_at.getTime() === clock.now().getTime(),
    );
    const listed = (await injectAs(t.app, me, { method: 'GET', url: '/auth/sessions' })).json().items;
    expect(listed[0].lastUsedAt).toBe(clock.now().toISOString());
  });

  it('records nothing for a request that is not authenticated', async () => {
    const me = await register(t.app);
    const id = await sessionOf(me.accessToken);
    const before = await sessionRow(id);
    clock.advance(5 * 60_000);
    expect((await injectAs(t.app, 'not.a.token', { method: 'GET', url: '/auth/me' })).statusCode).toBe(401);
    const marker = await register(t.app);
    await injectAs(t.app, marker, { method: 'GET', url: '/auth/me' });
    const markerId = await sessionOf(marker.accessToken);
    await eventually(
      () => sessionRow(markerId),
      (row) => row.last_used_at.getTime() === clock.now().getTime(),
    );
    expect((await sessionRow(id)).last_used_at.getTime()).toBe(before.last_used_at.getTime());
  });
});

describe('Idempotency-Key on POST /auth/login', () => {
  it('without a key, two logins open two sessions (the control)', async () => {
    const me = await register(t.app);
    await loginWithKey(me.email, undefined);
    await loginWithKey(me.email, undefined);
    expect(await sessionCount(me.user.id)).toBe(3);
  });

  it('a retry with the same key and request gets the same session and refresh token, marked as a replay', async () => {
    const me = await register(t.app);
    const key = randomUUID();
    const first = await loginWithKey(me.email, key);
    expect(first.statusCode).toBe(200);
    const firstSession = await sessionOf(first.json().accessToken);
    clock.advance(20 * 60_000); // the first access token has expired meanwhile
    const retry = await loginWithKey(me.email.toUpperCase(), key);
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json().refreshToken).toBe(first.json().refreshToken);
    expect(await sessionOf(retry.json().accessToken)).toBe(firstSession);
    expect((await injectAs(t.app, retry.json().accessToken, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
    expect(await sessionCount(me.user.id)).toBe(2);
    // neither the key nor the token is stored readable
    const rows = await t.container.db.query("SELECT key, response_body FROM idempotency_keys WHERE route = 'POST /auth/login'");
    expect(rows).toHaveLength(1);
    expect(rows[0].key).not.toContain(key);
    expect(rows[0].response_body.toString()).not.toContain(first.json().refreshToken);
  });

  it('two concurrent logins with one key open one session', async () => {
    const me = await register(t.app);
    const key = randomUUID();
    const results = await Promise.all([loginWithKey(me.email, key), loginWithKey(me.email, key), loginWithKey(me.email, key)]);
    const ok = results.filter((res) => res.statusCode === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const res of results.filter((res) => res.statusCode !== 200)) {
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('idempotency_in_progress');
    }
    expect(new Set(ok.map((res) => res.json().refreshToken)).size).toBe(1);
    expect(await sessionCount(me.user.id)).toBe(2);
  });

  it('the same key with another request is 422 idempotency_key_reused; a wrong password learns nothing', async () => {
    const me = await register(t.app);
    const key = randomUUID();
    expect((await loginWithKey(me.email, key)).statusCode).toBe(200);
    const otherDevice = await loginWithKey(me.email, key, { deviceId: 'phone-10' });
    expect(otherDevice.statusCode).toBe(422);
    expect(otherDevice.json().error.code).toBe('idempotency_key_reused');
    const wrongPassword = await loginWithKey(me.email, key, { password: 'not the password' });
    expect(wrongPassword.statusCode).toBe(401);
    expect(wrongPassword.json().error.code).toBe('invalid_credentials');
    expect(await sessionCount(me.user.id)).toBe(2);
  });

  it('once the session the key opened is in use or signed out, a retry is 409 conflict, not a second session', async () => {
    const me = await register(t.app);
    const key = randomUUID();
    const first = (await loginWithKey(me.email, key)).json();
    expect((await refresh(first.refreshToken)).statusCode).toBe(200);
    const retry = await loginWithKey(me.email, key);
    expect(retry.statusCode).toBe(409);
    expect(retry.json().error.code).toBe('conflict');

    const other = randomUUID();
    const second = (await loginWithKey(me.email, other, { deviceId: 'phone-11' })).json();
    await injectAs(t.app, second.accessToken, { method: 'POST', url: '/auth/logout' });
    expect((await loginWithKey(me.email, other, { deviceId: 'phone-11' })).json().error.code).toBe('conflict');
    expect(await sessionCount(me.user.id)).toBe(3);
  });

  it('a failed login does not hold the key, and an overlong key is 400', async () => {
    const me = await register(t.app);
    const key = randomUUID();
    await t.container.db.query('UPDATE users SET is_banned = true WHERE id = $1', [me.user.id]);
    expect((await loginWithKey(me.email, key)).json().error.code).toBe('account_banned');
    await t.container.db.query('UPDATE users SET is_banned = false WHERE id = $1', [me.user.id]);
    expect((await loginWithKey(me.email, key)).statusCode).toBe(200);
    expect((await loginWithKey(me.email, 'k'.repeat(256))).json().error.code).toBe('validation_failed');
  });
});

describe('Idempotency-Key on POST /auth/refresh', () => {
  it('a retry after the reuse grace gets the pair the first rotation issued instead of signing the device out', async () => {
    const me = await register(t.app);
    const key = randomUUID();
    const rotated = await refresh(me.refreshToken, key);
    expect(rotated.statusCode).toBe(200);
    clock.advance(60_000);
    const retry = await refresh(me.refreshToken, key);
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json().refreshToken).toBe(rotated.json().refreshToken);
    expect((await refresh(retry.json().refreshToken)).statusCode).toBe(200);
  });

  it('without the key the same retry is reuse (the control), and so it is once the issued pair was used', async () => {
    const control = await register(t.app);
    await refresh(control.refreshToken);
    clock.advance(60_000);
    expect((await refresh(control.refreshToken)).json().error.code).toBe('token_reused');

    const me = await register(t.app);
    const key = randomUUID();
    const rotated = (await refresh(me.refreshToken, key)).json();
    expect((await refresh(rotated.refreshToken)).statusCode).toBe(200);
    clock.advance(60_000);
    expect((await refresh(me.refreshToken, key)).json().error.code).toBe('token_reused');
  });

  it('the key with another refresh token of the same account is 422', async () => {
    const me = await register(t.app);
    const laptop = await login(t.app, me.email);
    const key = randomUUID();
    expect((await refresh(me.refreshToken, key)).statusCode).toBe(200);
    const other = await refresh(laptop.refreshToken, key);
    expect(other.statusCode).toBe(422);
    expect(other.json().error.code).toBe('idempotency_key_reused');
    expect((await refresh('x'.repeat(43), key)).json().error.code).toBe('invalid_token');
  });
});
