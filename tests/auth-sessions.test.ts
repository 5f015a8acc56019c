import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const clock = manualClock();
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());
beforeEach(() => truncateAll(t));

const refresh = (refreshToken: string) => t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } });
const me = (accessToken: string) => injectAs(t.app, accessToken, { method: 'GET', url: '/auth/me' });

describe('POST /auth/refresh', () => {
  it('rotates: a new pair for the same device session, and the old token stops working', async () => {
    const first = await register(t.app);
    const res = await refresh(first.refreshToken);
    expect(res.statusCode).toBe(200);
    const second = res.json();
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.user).toEqual(first.user);
    expect((await me(second.accessToken)).statusCode).toBe(200);
    const [{ sessions }] = await t.container.db.query('SELECT count(DISTINCT session_id)::int AS sessions FROM refresh_tokens');
    expect(sessions).toBe(1);
  });

  it('revokes the whole device session when an already-rotated token is presented again', async () => {
    const stolen = await register(t.app);
    const legit = (await refresh(stolen.refreshToken)).json();
    const newer = (await refresh(legit.refreshToken)).json();
    clock.advance(11_000); // past the reuse grace period

    const reuse = await refresh(stolen.refreshToken);
    expect(reuse.statusCode).toBe(401);
    expect(reuse.json().error.code).toBe('token_reused');
    // every token of the family is dead, and so are its access tokens, at once
    expect((await refresh(newer.refreshToken)).statusCode).toBe(401);
    expect((await me(newer.accessToken)).json().error.code).toBe('session_revoked');
    const [event] = await t.container.db.query("SELECT user_id FROM activity_logs WHERE type = 'refresh_token_reused'");
    expect(event.user_id).toBe(stolen.user.id);
  });

  it('gives the reuse grace to the immediately previous token only: an older one of the chain revokes the family', async () => {
    const first = await register(t.app);
    const second = (await refresh(first.refreshToken)).json();
    const third = (await refresh(second.refreshToken)).json();
    // within the grace period: the previous token gets the current pair again, and nothing else
    const retried = await refresh(second.refreshToken);
    expect(retried.statusCode).toBe(200);
    expect(retried.json().refreshToken).toBe(third.refreshToken);
    // the token before it is still within 10 s of its rotation, but walking the chain is reuse
    const walked = await refresh(first.refreshToken);
    expect(walked.statusCode).toBe(401);
    expect(walked.json().error.code).toBe('token_reused');
    expect((await refresh(third.refreshToken)).statusCode).toBe(401);
    expect((await me(third.accessToken)).statusCode).toBe(401);
  });

  it('issues exactly one new pair for concurrent refreshes with the same token', async () => {
    const { refreshToken } = await register(t.app);
    const results = await Promise.all(Array.from({ length: 5 }, () => refresh(refreshToken)));
    expect(results.map((res) => res.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(results.map((res) => res.json().refreshToken)).size).toBe(1);
    const [{ live }] = await t.container.db.query('SELECT count(*)::int AS live FROM refresh_tokens WHERE NOT revoked');
    expect(live).toBe(1);
    // and the session survived: the new token works
    expect((await refresh(results[0]!.json().refreshToken)).statusCode).toBe(200);
  });

  it('rejects an unknown token and an expired one', async () => {
    expect((await refresh('x'.repeat(43))).json().error.code).toBe('invalid_token');
    const { refreshToken } = await register(t.app);
    clock.advance(31 * 86_400_000);
    const expired = await refresh(refreshToken);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe('token_expired');
  });

  it('ends a session 90 days after its sign-in however often it is refreshed', async () => {
    const start = clock.now();
    try {
      let pair = await register(t.app);
      for (let refreshes = 0; refreshes < 3; refreshes += 1) {
        clock.advance(25 * 86_400_000);
        const res = await refresh(pair.refreshToken);
        expect(res.statusCode).toBe(200);
        pair = res.json();
      }
      clock.advance(16 * 86_400_000); // 91 days after the sign-in, 16 after the last refresh
      const res = await refresh(pair.refreshToken);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('token_expired');
    } finally {
      clock.set(start);
    }
  });

  it('refuses to refresh a banned account', async () => {
    const { refreshToken, user } = await register(t.app);
    await t.container.db.query('UPDATE users SET is_banned = true WHERE id = $1', [user.id]);
    const res = await refresh(refreshToken);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('account_banned');
    // nothing was rotated: the failed attempt left no half-written rows
    const [{ tokens }] = await t.container.db.query('SELECT count(*)::int AS tokens FROM refresh_tokens');
    expect(tokens).toBe(1);
  });
});

describe('signing out', () => {
  it('logout ends this device only: its access token fails at once, the other device keeps working', async () => {
    const phone = await register(t.app);
    const laptop = await login(t.app, phone.email);
    const res = await injectAs(t.app, phone, { method: 'POST', url: '/auth/logout' });
    expect(res.statusCode).toBe(204);
    expect((await me(phone.accessToken)).json().error.code).toBe('session_revoked');
    expect((await refresh(phone.refreshToken)).statusCode).toBe(401);
    expect((await me(laptop.accessToken)).statusCode).toBe(200);
  });

  it('logout-all ends every device', async () => {
    const phone = await register(t.app);
    const laptop = await login(t.app, phone.email);
    expect((await injectAs(t.app, laptop, { method: 'POST', url: '/auth/logout-all' })).statusCode).toBe(204);
    for (const pair of [phone, laptop]) {
      expect((await me(pair.accessToken)).statusCode).toBe(401);
      expect((await refresh(pair.refreshToken)).statusCode).toBe(401);
    }
  });
});

describe('device sessions', () => {
  it('lists my devices with the current one marked', async () => {
    const phone = await register(t.app, { deviceId: 'phone-1', platform: 'ios' });
    const laptop = await login(t.app, phone.email, { deviceId: 'laptop-1', platform: 'web' });
    const res = await injectAs(t.app, laptop, { method: 'GET', url: '/auth/sessions' });
    expect(res.statusCode).toBe(200);
    const items = res.json().items;
    expect(items).toHaveLength(2);
    expect(items.find((item: { current: boolean }) => item.current)).toMatchObject({ deviceId: 'laptop-1', platform: 'web' });
    expect(items.find((item: { current: boolean }) => !item.current)).toMatchObject({ deviceId: 'phone-1', platform: 'ios' });
  });

  it('signs one of my devices out by id', async () => {
    const phone = await register(t.app);
    const laptop = await login(t.app, phone.email);
    const phoneSession = (await injectAs(t.app, laptop, { method: 'GET', url: '/auth/sessions' }))
      .json()
      .items.find((item: { current: boolean }) => !item.current);
    const res = await injectAs(t.app, laptop, { method: 'DELETE', url: `/auth/sessions/${phoneSession.id}` });
    expect(res.statusCode).toBe(204);
    expect((await me(phone.accessToken)).json().error.code).toBe('session_revoked');
    expect((await me(laptop.accessToken)).statusCode).toBe(200);
  });

  it("answers 404 for another user's session and leaves it alone", async () => {
    const mine = await register(t.app);
    const theirs = await register(t.app);
    const theirSession = (await injectAs(t.app, theirs, { method: 'GET', url: '/auth/sessions' })).json().items[0];
    const res = await injectAs(t.app, mine, { method: 'DELETE', url: `/auth/sessions/${theirSession.id}` });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
    expect((await me(theirs.accessToken)).statusCode).toBe(200);
  });
});
