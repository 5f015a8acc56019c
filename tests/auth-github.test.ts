import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { githubUser, startFakeGitHub, type FakeGitHub } from './helpers/fake-github.js';
import { callback, githubSignIn, parseSetCookie, setCookie, startLogin } from './helpers/github-login.js';

const FRONT = 'http://front.parley.test';
const APP_URL = 'http://api.parley.test';
const AUTHORIZED = 'owner@users.parley.test';

const clock = manualClock();
let github: FakeGitHub;
let t: TestApp;
/** Single-user mode (AUTHORIZED_USER_EMAIL), GitHub configured. */
let single: TestApp;

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
  };
  // one after the other: two first starts on one database race to create the month's activity-log partition
  t = await buildTestApp({ clock, env });
  single = await buildTestApp({ env: { ...env, AUTHORIZED_USER_EMAIL: AUTHORIZED } });
});
afterAll(async () => {
  await t?.close();
  await single?.close();
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
