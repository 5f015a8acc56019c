import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { bearer, login, PASSWORD, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { githubUser, startFakeGitHub, type FakeGitHub } from './helpers/fake-github.js';
import { githubSignIn, oauthCookies, parseSetCookie, setCookie, type BrowserSession } from './helpers/github-login.js';

const FRONT = 'http://front.parley.test';
const DAY = 24 * 60 * 60_000;

const clock = manualClock();
let github: FakeGitHub;
let t: TestApp;

function gitHubEnv(): Record<string, string> {
  return {
    WORKERS: 'off',
    DATABASE_POOL_SIZE: '4',
    APP_URL: 'http://api.parley.test',
    FRONTEND_URL: FRONT,
    GITHUB_CLIENT_ID: github.clientId,
    GITHUB_CLIENT_SECRET: github.clientSecret,
    GITHUB_OAUTH_URL: github.origin,
    GITHUB_API_URL: github.origin,
  };
}

beforeAll(async () => {
  github = await startFakeGitHub();
  t = await buildTestApp({ clock, env: gitHubEnv() });
});
afterAll(async () => {
  await t?.close();
  await github?.close();
});

const signIn = (name = 'browser') => githubSignIn(t.app, github, githubUser(`${name}-${randomBytes(3).toString('hex')}`));

/** A request of the browser signed in as `session`: its cookie, and for a write its CSRF token and Origin unless given. */
function asBrowser(
  session: BrowserSession,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  options: { headers?: Record<string, string>; payload?: unknown } = {},
) {
  const write = method !== 'GET';
  return t.app.inject({
    method,
    url,
    headers: { cookie: session.cookie, ...(write ? { 'x-csrf-token': session.csrfToken, origin: FRONT } : {}), ...options.headers },
    ...(options.payload === undefined ? {} : { payload: options.payload as Record<string, unknown> }),
  });
}

const expectError = (res: { statusCode: number; body: string; json(): { error: { code: string } } }, status: number, code: string) => {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json().error.code).toBe(code);
};

describe('the session cookie', () => {
  it('signs the browser in on every authenticated route, and is listed among my sessions', async () => {
    const browser = await signIn();
    const me = await asBrowser(browser, 'GET', '/auth/me');
    expect(me.statusCode).toBe(200);
    expect(me.json().id).toBe(browser.userId);
    const profile = await asBrowser(browser, 'GET', '/users/me');
    expect(profile.statusCode).toBe(200);
    const patched = await asBrowser(browser, 'PATCH', '/users/me', {
      payload: { version: profile.json().profile.version, username: `gh_${browser.userId.slice(0, 8)}`, englishLevel: 'advanced' },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const sessions = await asBrowser(browser, 'GET', '/auth/sessions');
    expect(sessions.json().items).toEqual([expect.objectContaining({ platform: 'web', current: true, deviceId: expect.stringMatching(/^browser-/) })]);
  });

  it('is refused when Parley never issued it (401 invalid_token), and the browser is told to forget it', async () => {
    for (const cookie of ['session_token=not-a-session', `session_token=${randomBytes(32).toString('base64url')}`]) {
      const res = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { cookie } });
      expectError(res, 401, 'invalid_token');
      expect(setCookie(res, 'session_token')).toMatch(/^session_token=; .*Max-Age=0/);
    }
    expectError(await t.app.inject({ method: 'GET', url: '/auth/user' }), 401, 'unauthorized');
  });

  it('keeps working from PostgreSQL when its Redis cache is gone', async () => {
    const browser = await signIn();
    await t.container.redis.client.flushdb();
    expect((await asBrowser(browser, 'GET', '/auth/me')).statusCode).toBe(200);
  });
});

describe('CSRF on cookie-authenticated writes', () => {
  it("refuses a write without the token, with a wrong one, or with another session's: 403 csrf_token_invalid", async () => {
    const browser = await signIn();
    const other = await signIn('other');
    const write = (headers: Record<string, string>) => asBrowser(browser, 'POST', '/auth/verify-email/resend', { headers });
    const without = await t.app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: browser.cookie, origin: FRONT } });
    expectError(without, 403, 'csrf_token_invalid');
    expectError(await write({ 'x-csrf-token': 'x'.repeat(43) }), 403, 'csrf_token_invalid');
    expectError(await write({ 'x-csrf-token': other.csrfToken }), 403, 'csrf_token_invalid');
    expectError(await write({ 'x-csrf-token': '' }), 403, 'csrf_token_invalid');
    // the refused logout did not sign out
    expect((await asBrowser(browser, 'GET', '/auth/me')).statusCode).toBe(200);
    // with its own token it goes through (409: this account's e-mail is verified already)
    expectError(await write({}), 409, 'already_verified');
  });

  it('refuses a write from another origin (Origin, else Referer) with 403 origin_not_allowed; a GET needs neither', async () => {
    const browser = await signIn();
    expectError(await asBrowser(browser, 'POST', '/auth/verify-email/resend', { headers: { origin: 'https://evil.example' } }), 403, 'origin_not_allowed');
    expectError(await asBrowser(browser, 'POST', '/auth/verify-email/resend', { headers: { origin: 'null' } }), 403, 'origin_not_allowed');
    const noOrigin = await t.app.inject({
      method: 'POST',
      url: '/auth/verify-email/resend',
      headers: { cookie: browser.cookie, 'x-csrf-token': browser.csrfToken },
    });
    expectError(noOrigin, 403, 'origin_not_allowed');
    const byReferer = await t.app.inject({
      method: 'POST',
      url: '/auth/verify-email/resend',
      headers: { cookie: browser.cookie, 'x-csrf-token': browser.csrfToken, referer: `${FRONT}/settings` },
    });
    expectError(byReferer, 409, 'already_verified');
    const evilReferer = await t.app.inject({
      method: 'POST',
      url: '/auth/verify-email/resend',
      headers: { cookie: browser.cookie, 'x-csrf-token': browser.csrfToken, referer: 'https://evil.example/page' },
    });
    expectError(evilReferer, 403, 'origin_not_allowed');
    // reads need no token, from anywhere
    const read = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: browser.cookie, origin: 'https://evil.example' } });
    expect(read.statusCode).toBe(200);
  });

  it('exempts bearer requests; with both a bearer token and the cookie, the bearer token decides alone', async () => {
    const browser = await signIn();
    const phone = await register(t.app);
    const both = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: browser.cookie, ...bearer(phone.accessToken) } });
    expect(both.json().id).toBe(phone.user.id);
    // no CSRF token needed: the bearer token is the caller, the cookie is ignored
    const write = await t.app.inject({
      method: 'POST',
      url: '/auth/verify-email/resend',
      headers: { cookie: browser.cookie, ...bearer(phone.accessToken), origin: 'https://evil.example' },
    });
    expect(write.statusCode, write.body).toBe(202);
    // a bad bearer token is not rescued by a good cookie
    expectError(
      await t.app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: browser.cookie, authorization: 'Bearer nope' } }),
      401,
      'invalid_token',
    );
  });
});

describe('revocation', () => {
  it('POST /auth/logout by cookie ends the browser session and clears the cookie; the bearer logout still works and leaves the cookie alone', async () => {
    const browser = await signIn();
    const res = await asBrowser(browser, 'POST', '/auth/logout');
    expect(res.statusCode).toBe(204);
    expect(parseSetCookie(setCookie(res, 'session_token')!)).toMatchObject({
      name: 'session_token',
      value: '',
      attributes: expect.arrayContaining(['Path=/', 'HttpOnly', 'SameSite=Lax', 'Max-Age=0']),
    });
    expectError(await asBrowser(browser, 'GET', '/auth/me'), 401, 'session_revoked');

    const other = await signIn();
    const phone = await register(t.app);
    const bearerLogout = await t.app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: other.cookie, ...bearer(phone.accessToken) } });
    expect(bearerLogout.statusCode).toBe(204);
    expect(setCookie(bearerLogout, 'session_token')).toBeUndefined();
    expectError(await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(phone.accessToken) }), 401, 'session_revoked');
    expect((await asBrowser(other, 'GET', '/auth/me')).statusCode).toBe(200);
  });

  it('logout-all ends every browser session of the account', async () => {
    const user = githubUser(`twice-${randomBytes(3).toString('hex')}`);
    const laptop = await githubSignIn(t.app, github, user);
    const tablet = await githubSignIn(t.app, github, user);
    expect(tablet.userId).toBe(laptop.userId);
    const res = await asBrowser(laptop, 'POST', '/auth/logout-all');
    expect(res.statusCode).toBe(204);
    expect(setCookie(res, 'session_token')).toMatch(/Max-Age=0/);
    expectError(await asBrowser(laptop, 'GET', '/auth/me'), 401, 'session_revoked');
    expectError(await asBrowser(tablet, 'GET', '/auth/me'), 401, 'session_revoked');
  });

  it('a password reset ends every browser session of the account', async () => {
    const user = githubUser(`reset-${randomBytes(3).toString('hex')}`);
    const browser = await githubSignIn(t.app, github, user);
    const second = await githubSignIn(t.app, github, user);
    const token = randomBytes(32).toString('base64url');
    await t.container.db.query('INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, used, created_at) VALUES ($1, $2, $3, $4, false, $5)', [
      randomUUID(),
      browser.userId,
      createHash('sha256').update(token).digest('hex'),
      new Date(clock.now().getTime() + 60 * 60_000),
      clock.now(),
    ]);
    const reset = await t.app.inject({ method: 'POST', url: '/auth/reset-password', payload: { token, newPassword: PASSWORD } });
    expect(reset.statusCode, reset.body).toBe(204);
    expectError(await asBrowser(browser, 'GET', '/auth/me'), 401, 'session_revoked');
    expectError(await asBrowser(second, 'GET', '/auth/me'), 401, 'session_revoked');
    // and the new password signs in
    expect((await login(t.app, browser.email)).user.id).toBe(browser.userId);
  });

  it('a ban ends the browser session at once (403 account_banned)', async () => {
    const browser = await signIn();
    const admin = await register(t.app);
    await t.container.services.auth.ensureAdmin(admin.email, undefined);
    const banned = await t.app.inject({
      method: 'PATCH',
      url: `/admin/users/${browser.userId}/ban`,
      headers: bearer(admin.accessToken),
      payload: { reason: 'spam' },
    });
    expect(banned.statusCode, banned.body).toBe(204);
    expectError(await asBrowser(browser, 'GET', '/auth/me'), 403, 'account_banned');
  });
});

describe('lifetime', () => {
  it('slides: each use within 7 days extends it; 7 days unused ends it (401 token_expired, cookie cleared)', async () => {
    const browser = await signIn();
    for (let week = 0; week < 3; week += 1) {
      clock.advance(6 * DAY);
      expect((await asBrowser(browser, 'GET', '/auth/me')).statusCode, `week ${week}`).toBe(200);
    }
    clock.advance(7 * DAY);
    const res = await asBrowser(browser, 'GET', '/auth/me');
    expectError(res, 401, 'token_expired');
    expect(setCookie(res, 'session_token')).toMatch(/Max-Age=0/);
  });

  it('ends 30 days after the sign-in however often it is used', async () => {
    const browser = await signIn();
    for (let day = 6; day < 30; day += 6) {
      clock.advance(6 * DAY);
      expect((await asBrowser(browser, 'GET', '/auth/me')).statusCode, `day ${day}`).toBe(200);
    }
    clock.advance(6 * DAY);
    const res = await asBrowser(browser, 'GET', '/auth/me');
    expectError(res, 401, 'token_expired');
    expect(res.json().error.message).toContain('maximum lifetime');
  });
});

describe('in production', () => {
  it('names the cookies with the __Host- prefix and marks them Secure', async () => {
    const production = await buildTestApp({
      env: {
        ...gitHubEnv(),
        DATABASE_POOL_SIZE: '2',
        NODE_ENV: 'production',
        SESSION_SECRET: 'a production session secret of 32+ chars',
        METRICS_TOKEN: 'a production metrics token',
        OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32),
      },
    });
    try {
      const login = await production.app.inject({ method: 'GET', url: '/auth/login' });
      const stateCookie = setCookie(login, '__Host-oauth_state')!;
      expect(parseSetCookie(stateCookie).attributes).toEqual(['HttpOnly', 'Max-Age=600', 'Path=/', 'SameSite=Lax', 'Secure']);
      expect(parseSetCookie(setCookie(login, '__Host-oauth_verifier')!).attributes).toEqual(['HttpOnly', 'Max-Age=600', 'Path=/', 'SameSite=Lax', 'Secure']);
      const back = new URL(github.authorize(login.json().url, githubUser('prod')));
      const res = await production.app.inject({ method: 'GET', url: `${back.pathname}${back.search}`, headers: { cookie: oauthCookies(login, '__Host-') } });
      expect(res.statusCode, res.body).toBe(302);
      const session = setCookie(res, '__Host-session_token')!;
      expect(parseSetCookie(session)).toEqual({
        name: '__Host-session_token',
        value: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        attributes: ['HttpOnly', expect.stringMatching(/^Max-Age=\d+$/), 'Path=/', 'SameSite=Lax', 'Secure'],
      });
      expect(setCookie(res, 'session_token')).toBeUndefined();
      // the unprefixed name signs nobody in there
      const me = await production.app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: `session_token=${session.split(';')[0]!.split('=')[1]}` } });
      expectError(me, 401, 'unauthorized');
      expect((await production.app.inject({ method: 'GET', url: '/auth/me', headers: { cookie: session.split(';')[0]! } })).statusCode).toBe(200);
    } finally {
      await production.close();
    }
  });
});
