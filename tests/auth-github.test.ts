import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { bearer, PASSWORD, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { githubUser, startFakeGitHub, type FakeGitHub } from './helpers/fake-github.js';
import { callback, githubSignIn, oauthCookies, parseSetCookie, setCookie, startLogin } from './helpers/github-login.js';

const FRONT = 'http://front.parley.test';
const APP_URL = 'http://api.parley.test';
const AUTHORIZED = 'owner@users.parley.test';

const clock = manualClock();
let github: FakeGitHub;
let t: TestApp;
/** Single-user mode (AUTHORIZED_USER_EMAIL), GitHub configured. */
let single: TestApp;
/** The documented-looking limit on GitHub sign-ins, low enough to reach. */
let limited: TestApp;

beforeAll(async () => {
  github = await startFakeGitHub();
  const env = {
    WORKERS: 'off',
    DATABASE_POOL_SIZE: '4',
    APP_URL,
    FRONTEND_URL: `${FRONT},http://other-front.parley.test`,
    GITHUB_CLIENT_ID: github.clientId,
    GITHUB_CLIENT_SECRET: github.clientSecret,
    GITHUB_OAUTH_URL: github.origin,
    GITHUB_API_URL: github.origin,
    // a hanging GitHub is given up on quickly here
    GITHUB_TIMEOUT: '2s',
  };
  // one after the other: two first starts on one database race to create the month's activity-log partition
  t = await buildTestApp({ clock, env });
  single = await buildTestApp({ env: { ...env, AUTHORIZED_USER_EMAIL: AUTHORIZED } });
  limited = await buildTestApp({ env: { ...env, AUTH_GITHUB_LIMIT: '3/15m' } });
});
afterAll(async () => {
  await t?.close();
  await single?.close();
  await limited?.close();
  await github?.close();
});

const tokenExchanges = () => github.requests.filter((request) => request === 'POST /login/oauth/access_token').length;
const identities = async (subject: number) =>
  t.container.db.query<Array<{ user_id: string; issuer: string; email: string }>>('SELECT user_id, issuer, email FROM external_identities WHERE subject = $1', [
    String(subject),
  ]);

describe('GET /auth/login', () => {
  it("answers the URL of GitHub's sign-in page with PKCE S256 and a state bound to the browser by a signed cookie", async () => {
    const providers = await t.app.inject({ method: 'GET', url: '/auth/providers' });
    expect(providers.json()).toMatchObject({ password: true, github: true });

    const res = await t.app.inject({ method: 'GET', url: '/auth/login' });
    expect(res.statusCode).toBe(200);
    const { url, state } = res.json<{ url: string; state: string }>();
    const authorize = new URL(url);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${github.origin}/login/oauth/authorize`);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      client_id: github.clientId,
      redirect_uri: `${APP_URL}/auth/callback`,
      state,
      code_challenge_method: 'S256',
      scope: 'read:user user:email',
    });
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const cookie = setCookie(res, 'oauth_state')!;
    expect(cookie).toMatch(new RegExp(`^oauth_state=${state}\\.[A-Za-z0-9_-]+;`));
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).toContain('Max-Age=600');
    // outside production: no Secure, no __Host- prefix (plain http on localhost)
    expect(cookie).not.toContain('Secure');

    const redirect = await t.app.inject({ method: 'GET', url: '/auth/login?redirect=true' });
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toMatch(`${github.origin}/login/oauth/authorize?`);
    expect(setCookie(redirect, 'oauth_state')).toBeDefined();
  });

  it('takes a returnTo only on a FRONTEND_URL origin (400 return_to_not_allowed otherwise)', async () => {
    for (const returnTo of ['https://evil.example/steal', 'http://front.parley.test.evil.example/', '/relative', 'javascript:alert(1)']) {
      const res = await t.app.inject({ method: 'GET', url: `/auth/login?returnTo=${encodeURIComponent(returnTo)}` });
      expect(res.statusCode, returnTo).toBe(400);
      expect(res.json().error.code).toBe('return_to_not_allowed');
    }
    const user = githubUser('returner');
    const login = await startLogin(t.app, `?returnTo=${encodeURIComponent('http://other-front.parley.test/app?tab=2')}`);
    const res = await callback(t.app, github.authorize(login.url, user), login.stateCookie);
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('http://other-front.parley.test/app?tab=2');
  });

  it('answers 404 identity_provider_not_configured when GitHub is not configured, and /auth/providers says so', async () => {
    const bare = await buildTestApp({ env: { WORKERS: 'off', DATABASE_POOL_SIZE: '2' } });
    try {
      expect((await bare.app.inject({ method: 'GET', url: '/auth/providers' })).json().github).toBe(false);
      for (const url of ['/auth/login', '/auth/login?redirect=true', '/auth/callback?code=x&state=y']) {
        const res = await bare.app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(404);
        expect(res.json().error.code).toBe('identity_provider_not_configured');
      }
    } finally {
      await bare.close();
    }
  });
});

describe('GET /auth/callback', () => {
  it('signs a new GitHub user in: an account with the verified primary e-mail, linked by GitHub id, the session cookie, a 302 to the front end', async () => {
    const user = githubUser('newcomer', [
      { email: 'Old@Users.Parley.test', primary: false, verified: true },
      { email: 'NewComer@Users.Parley.test', primary: true, verified: true },
    ]);
    const login = await startLogin(t.app);
    const res = await callback(t.app, github.authorize(login.url, user), login.stateCookie);
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe(`${FRONT}/`);
    const session = setCookie(res, 'session_token')!;
    expect(parseSetCookie(session)).toEqual({
      name: 'session_token',
      value: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      attributes: ['HttpOnly', 'Max-Age=2592000', 'Path=/', 'SameSite=Lax'],
    });
    // the state cookie is spent
    expect(setCookie(res, 'oauth_state')).toMatch(/^oauth_state=; .*Max-Age=0/);

    const me = await t.app.inject({ method: 'GET', url: '/auth/user', headers: { cookie: session.split(';')[0]! } });
    expect(me.statusCode).toBe(200);
    const body = me.json();
    expect(body.user).toMatchObject({ email: 'newcomer@users.parley.test', role: 'student', isVerified: true });
    expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await identities(user.id)).toEqual([{ user_id: body.user.id, issuer: `github:${github.origin}`, email: 'newcomer@users.parley.test' }]);

    // the GitHub id is the link: a renamed login and a new primary e-mail sign in to the same account
    user.login = 'renamed';
    user.emails = [{ email: 'elsewhere@users.parley.test', primary: true, verified: true }];
    const again = await githubSignIn(t.app, github, user);
    expect(again.userId).toBe(body.user.id);
  });

  it('refuses a missing, mismatched, forged, replayed or expired state before asking GitHub anything', async () => {
    const user = githubUser('stateful');
    const expectRefused = async (res: Awaited<ReturnType<typeof callback>>, label: string) => {
      expect(res.statusCode, `${label}: ${res.body}`).toBe(400);
      expect(res.json().error.code, label).toBe('oauth_state_invalid');
      expect(setCookie(res, 'session_token'), label).toBeUndefined();
    };
    const exchangesBefore = tokenExchanges();

    const login = await startLogin(t.app);
    const back = new URL(github.authorize(login.url, user));
    const withoutState = new URL(back);
    withoutState.searchParams.delete('state');
    await expectRefused(await callback(t.app, withoutState.toString(), login.stateCookie), 'no state');
    await expectRefused(await callback(t.app, back.toString(), undefined), 'no state cookie');
    // another browser's sign-in: its own valid cookie, not this state
    const other = await startLogin(t.app);
    await expectRefused(await callback(t.app, back.toString(), other.stateCookie), 'mismatched');
    const [name, value] = login.stateCookie.split('=');
    await expectRefused(await callback(t.app, back.toString(), `${name}=${value!.split('.')[0]}.forged`), 'forged signature');
    const otherState = new URL(back);
    otherState.searchParams.set('state', other.state);
    await expectRefused(await callback(t.app, otherState.toString(), login.stateCookie), 'state of another sign-in');
    expect(tokenExchanges()).toBe(exchangesBefore);

    // once: the first use signs in, the same callback again is refused
    expect((await callback(t.app, back.toString(), login.stateCookie)).statusCode).toBe(302);
    await expectRefused(await callback(t.app, back.toString(), login.stateCookie), 'replayed');

    // ten minutes to come back from GitHub
    const late = await startLogin(t.app);
    clock.advance(10 * 60_000 + 1);
    await expectRefused(await callback(t.app, github.authorize(late.url, user), late.stateCookie), 'expired');
    expect(tokenExchanges()).toBe(exchangesBefore + 1);
  });

  it('refuses a code used before, or exchanged without its own PKCE verifier (GitHub answers 200 { error })', async () => {
    const user = githubUser('reuser');
    const first = await startLogin(t.app);
    const firstBack = new URL(github.authorize(first.url, user));
    expect((await callback(t.app, firstBack.toString(), first.stateCookie)).statusCode).toBe(302);

    // the spent code under a fresh state of the same browser
    const second = await startLogin(t.app);
    const reused = new URL(firstBack);
    reused.searchParams.set('state', second.state);
    const res = await callback(t.app, reused.toString(), second.stateCookie);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'oauth_code_invalid', details: { reason: 'bad_verification_code' } });

    // a code GitHub issued for another sign-in (another code_challenge) does not pass this one's verifier
    const victim = await startLogin(t.app);
    const attacker = await startLogin(t.app);
    const stolen = new URL(github.authorize(victim.url, user));
    stolen.searchParams.set('state', attacker.state);
    const crossed = await callback(t.app, stolen.toString(), attacker.stateCookie);
    expect(crossed.statusCode).toBe(400);
    expect(crossed.json().error.code).toBe('oauth_code_invalid');
    expect(setCookie(crossed, 'session_token')).toBeUndefined();
  });

  it("handles GitHub's 200 { error } and a declined sign-in: an error body for API clients, a redirect with ?error= for a browser", async () => {
    const user = githubUser('refused');
    github.tokenError = 'incorrect_client_credentials';
    try {
      const login = await startLogin(t.app);
      const res = await callback(t.app, github.authorize(login.url, user), login.stateCookie);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'oauth_code_invalid', details: { reason: 'incorrect_client_credentials' } });

      const browser = await startLogin(t.app, `?returnTo=${encodeURIComponent(`${FRONT}/signed-in`)}`);
      const navigated = await callback(t.app, github.authorize(browser.url, user), browser.stateCookie, { accept: 'text/html,application/xhtml+xml' });
      expect(navigated.statusCode).toBe(302);
      expect(navigated.headers.location).toBe(`${FRONT}/signed-in?error=oauth_code_invalid`);
      expect(setCookie(navigated, 'session_token')).toBeUndefined();
    } finally {
      github.tokenError = null;
    }
    expect(await identities(user.id)).toEqual([]);

    // the user pressed "Cancel" on GitHub
    const declined = await startLogin(t.app);
    const res = await callback(t.app, `${APP_URL}/auth/callback?error=access_denied&state=${declined.state}`, declined.stateCookie);
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({ code: 'oauth_denied', details: { reason: 'access_denied' } });
  });

  it('refuses a GitHub account without a verified primary e-mail (403 email_not_verified), making no account', async () => {
    const cases = [
      githubUser('unverified', [{ email: 'unverified@users.parley.test', primary: true, verified: false }]),
      // a verified secondary e-mail does not stand in for the primary
      githubUser('half', [
        { email: 'half-primary@users.parley.test', primary: true, verified: false },
        { email: 'half-other@users.parley.test', primary: false, verified: true },
      ]),
    ];
    for (const user of cases) {
      const login = await startLogin(t.app);
      const res = await callback(t.app, github.authorize(login.url, user), login.stateCookie);
      expect(res.statusCode, user.login).toBe(403);
      expect(res.json().error.code).toBe('email_not_verified');
      expect(await identities(user.id)).toEqual([]);
    }
    const [{ count }] = await t.container.db.query("SELECT count(*)::int AS count FROM users WHERE email LIKE 'half-%' OR email LIKE 'unverified%'");
    expect(count).toBe(0);
  });

  it('never takes over a password account with the same e-mail: 409 account_link_required, nothing linked', async () => {
    const owner = await register(t.app);
    const user = githubUser('lookalike', [{ email: owner.email, primary: true, verified: true }]);
    const login = await startLogin(t.app);
    const res = await callback(t.app, github.authorize(login.url, user), login.stateCookie);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('account_link_required');
    expect(setCookie(res, 'session_token')).toBeUndefined();
    expect(await identities(user.id)).toEqual([]);
    const [{ sessions }] = await t.container.db.query('SELECT count(*)::int AS sessions FROM device_sessions WHERE user_id = $1', [owner.user.id]);
    expect(sessions).toBe(1);
  });
});

describe('single-user mode (AUTHORIZED_USER_EMAIL) through GitHub', () => {
  it('lets only the authorized e-mail sign in; anyone else gets 403 not_authorized_user and no account', async () => {
    const stranger = githubUser('stranger');
    const login = await startLogin(single.app);
    const res = await callback(single.app, github.authorize(login.url, stranger), login.stateCookie);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('not_authorized_user');
    expect(setCookie(res, 'session_token')).toBeUndefined();
    const [{ count }] = await single.container.db.query('SELECT count(*)::int AS count FROM users WHERE email = $1', [stranger.emails[0]!.email]);
    expect(count).toBe(0);

    const owner = await githubSignIn(single.app, github, githubUser('owner', [{ email: AUTHORIZED, primary: true, verified: true }]));
    expect(owner.email).toBe(AUTHORIZED);
  });
});

describe('GitHub failing during the code exchange', () => {
  it('answers 503 identity_provider_unavailable (never a 500) when the token endpoint errs, drops the connection or hangs; the state is spent', async () => {
    const user = githubUser('unlucky');
    for (const failure of ['server-error', 'reset', 'hang'] as const) {
      github.tokenFailure = failure;
      try {
        const login = await startLogin(t.app);
        const back = github.authorize(login.url, user);
        const started = Date.now();
        const res = await callback(t.app, back, login.stateCookie);
        expect(res.statusCode, `${failure}: ${res.body}`).toBe(503);
        expect(res.json().error.code, failure).toBe('identity_provider_unavailable');
        // GITHUB_TIMEOUT bounds a hanging GitHub
        expect(Date.now() - started, failure).toBeLessThan(5_000);
        expect(setCookie(res, 'session_token'), failure).toBeUndefined();
        expect(setCookie(res, 'oauth_state'), failure).toMatch(/^oauth_state=;/);
        // the state was taken: trying the same callback again starts nothing
        const again = await callback(t.app, back, login.stateCookie);
        expect(again.json().error.code, failure).toBe('oauth_state_invalid');

        const browser = await startLogin(t.app, `?returnTo=${encodeURIComponent(`${FRONT}/in`)}`);
        const navigated = await callback(t.app, github.authorize(browser.url, user), browser.stateCookie, { accept: 'text/html' });
        expect(navigated.statusCode, failure).toBe(302);
        expect(navigated.headers.location).toBe(`${FRONT}/in?error=identity_provider_unavailable`);
      } finally {
        github.tokenFailure = null;
      }
    }
    expect(await identities(user.id)).toEqual([]);
  }, 30_000);
});

describe('linking GitHub to a signed-in account (POST /auth/github/link)', () => {
  const startLink = (app: TestApp['app'], headers: Record<string, string>, payload?: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/auth/github/link', headers, ...(payload ? { payload } : {}) });

  it('is the way out of account_link_required: the account links its GitHub account, which then signs in to it', async () => {
    const owner = await register(t.app);
    const user = githubUser('linker', [{ email: owner.email, primary: true, verified: true }]);
    const refused = await startLogin(t.app);
    const conflict = await callback(t.app, github.authorize(refused.url, user), refused.stateCookie);
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error).toMatchObject({ code: 'account_link_required', message: expect.stringContaining('POST /auth/github/link') });

    const start = await startLink(t.app, bearer(owner.accessToken), { returnTo: `${FRONT}/settings` });
    expect(start.statusCode, start.body).toBe(200);
    const { url, state } = start.json<{ url: string; state: string }>();
    expect(new URL(url).searchParams.get('state')).toBe(state);
    expect(new URL(url).searchParams.get('code_challenge_method')).toBe('S256');
    const linked = await callback(t.app, github.authorize(url, user), oauthCookies(start));
    expect(linked.statusCode, linked.body).toBe(302);
    expect(linked.headers.location).toBe(`${FRONT}/settings`);
    // a link signs no browser in
    expect(setCookie(linked, 'session_token')).toBeUndefined();
    expect(await identities(user.id)).toEqual([{ user_id: owner.user.id, issuer: `github:${github.origin}`, email: owner.email }]);

    const signedIn = await githubSignIn(t.app, github, user);
    expect(signedIn.userId).toBe(owner.user.id);

    // linking it again to the same account changes nothing
    const again = await startLink(t.app, bearer(owner.accessToken));
    expect((await callback(t.app, github.authorize(again.json().url, user), oauthCookies(again))).headers.location).toBe(`${FRONT}/`);
    expect(await identities(user.id)).toHaveLength(1);
  });

  it('needs a signed-in caller, a cookie-signed-in browser its CSRF token, and a recent sign-in or the password', async () => {
    const anonymous = await startLink(t.app, {});
    expect(anonymous.statusCode).toBe(401);
    expect(setCookie(anonymous, 'oauth_state')).toBeUndefined();

    const browser = await githubSignIn(t.app, github, githubUser('cookie-linker'));
    const withoutCsrf = await startLink(t.app, { cookie: browser.cookie, origin: FRONT });
    expect(withoutCsrf.statusCode).toBe(403);
    expect(withoutCsrf.json().error.code).toBe('csrf_token_invalid');
    expect(setCookie(withoutCsrf, 'oauth_state')).toBeUndefined();
    const fromElsewhere = await startLink(t.app, { cookie: browser.cookie, origin: 'https://evil.example', 'x-csrf-token': browser.csrfToken });
    expect(fromElsewhere.json().error.code).toBe('origin_not_allowed');
    const withCsrf = await startLink(t.app, { cookie: browser.cookie, origin: FRONT, 'x-csrf-token': browser.csrfToken });
    expect(withCsrf.statusCode, withCsrf.body).toBe(200);

    const returnTo = await startLink(
      t.app,
      { cookie: browser.cookie, origin: FRONT, 'x-csrf-token': browser.csrfToken },
      { returnTo: 'https://evil.example/' },
    );
    expect(returnTo.statusCode).toBe(400);
    expect(returnTo.json().error.code).toBe('return_to_not_allowed');

    const owner = await register(t.app);
    clock.advance(11 * 60_000);
    const stale = await startLink(t.app, bearer(owner.accessToken));
    expect(stale.statusCode).toBe(403);
    expect(stale.json().error.code).toBe('recent_login_required');
    const wrongPassword = await startLink(t.app, bearer(owner.accessToken), { password: 'not the password' });
    expect(wrongPassword.json().error.code).toBe('invalid_credentials');
    expect(setCookie(wrongPassword, 'oauth_state')).toBeUndefined();
    expect((await startLink(t.app, bearer(owner.accessToken), { password: PASSWORD })).statusCode).toBe(200);
  });

  it("links to the account that started it, never another: not the callback browser's, not over another account's link, not after sign-out", async () => {
    const alice = await register(t.app);
    const user = githubUser('contested');
    const start = await startLink(t.app, bearer(alice.accessToken));
    const back = github.authorize(start.json().url, user);

    // another browser (its own sign-in cookies) cannot finish alice's link
    const stranger = await startLogin(t.app);
    const foreign = await callback(t.app, back, stranger.stateCookie);
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json().error.code).toBe('oauth_state_invalid');

    // the browser finishing it is signed in as bob: the link is still alice's, bob is untouched
    const bob = await githubSignIn(t.app, github, githubUser('bob'));
    const linked = await callback(t.app, back, `${oauthCookies(start)}; ${bob.cookie}`);
    expect(linked.statusCode, linked.body).toBe(302);
    expect(await identities(user.id)).toEqual([expect.objectContaining({ user_id: alice.user.id })]);
    expect(bob.userId).not.toBe(alice.user.id);

    // carol cannot take the GitHub account linked to alice
    const carol = await register(t.app);
    const carolStart = await startLink(t.app, bearer(carol.accessToken), { returnTo: `${FRONT}/settings` });
    const taken = await callback(t.app, github.authorize(carolStart.json().url, user), oauthCookies(carolStart));
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error.code).toBe('identity_already_linked');
    const carolBrowser = await startLink(t.app, bearer(carol.accessToken), { returnTo: `${FRONT}/settings` });
    const navigated = await callback(t.app, github.authorize(carolBrowser.json().url, user), oauthCookies(carolBrowser), { accept: 'text/html' });
    expect(navigated.headers.location).toBe(`${FRONT}/settings?error=identity_already_linked`);
    expect(await identities(user.id)).toEqual([expect.objectContaining({ user_id: alice.user.id })]);

    // a link whose session signed out before GitHub came back links nothing
    const dave = await register(t.app);
    const daveStart = await startLink(t.app, bearer(dave.accessToken));
    expect((await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(dave.accessToken) })).statusCode).toBe(204);
    const daveUser = githubUser('dave');
    const revoked = await callback(t.app, github.authorize(daveStart.json().url, daveUser), oauthCookies(daveStart));
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().error.code).toBe('session_revoked');
    expect(await identities(daveUser.id)).toEqual([]);
  });
});

describe('per-IP limits on the GitHub routes (AUTH_GITHUB_LIMIT)', () => {
  const statuses = async (requests: Array<() => Promise<{ statusCode: number }>>) => {
    const seen: number[] = [];
    for (const request of requests) seen.push((await request()).statusCode);
    return seen;
  };

  it('answers 429 rate_limited to the 4th start, callback or link start from one IP in 15 minutes; other IPs go on', async () => {
    const login = (remoteAddress: string) => () => limited.app.inject({ method: 'GET', url: '/auth/login', remoteAddress });
    expect(await statuses([1, 2, 3, 4].map(() => login('198.51.100.7')))).toEqual([200, 200, 200, 429]);
    const refused = await login('198.51.100.7')();
    expect(refused.json().error.code).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(800);
    expect(setCookie(refused, 'oauth_state')).toBeUndefined();
    expect((await login('198.51.100.8')()).statusCode).toBe(200);

    // counted apart from the starts
    const back = (remoteAddress: string) => () => limited.app.inject({ method: 'GET', url: '/auth/callback?code=c&state=s', remoteAddress });
    expect(await statuses([1, 2, 3, 4].map(() => back('198.51.100.7')))).toEqual([400, 400, 400, 429]);

    const owner = await register(limited.app);
    const link = () => limited.app.inject({ method: 'POST', url: '/auth/github/link', remoteAddress: '198.51.100.9', headers: bearer(owner.accessToken) });
    expect(await statuses([link, link, link, link])).toEqual([200, 200, 200, 429]);
  });
});
