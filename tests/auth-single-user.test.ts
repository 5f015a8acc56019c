import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { bearer, injectAs, login, PASSWORD, register, uniqueEmail, type Pair } from './helpers/auth.js';
import { signToken, type TokenClaims } from './helpers/fake-jwks.js';
import { client, listen, refusal } from './helpers/realtime.js';
import { openWs, wsUrl } from './helpers/ws.js';

/** Document 001's front end: its HS256 token names the user's e-mail in sub. */
const ORION = { iss: 'https://www.sidekickportal.test', aud: 'orion-core', secret: randomBytes(64).toString('hex') };
/** No background work is needed here: the apps keep to a few database connections on the shared test server. */
const LEAN = { WORKERS: 'off', DATABASE_POOL_SIZE: '4' };
const ORION_ENV = { ORION_SHARED_JWT_SECRET: ORION.secret, ORION_SHARED_JWT_ISS: ORION.iss, ORION_SHARED_JWT_AUD: ORION.aud };

/** Any account may sign in: where the other accounts come from. */
let open: TestApp;
/** AUTHORIZED_USER_EMAIL is the owner's, on the same database. */
let solo: TestApp;
let soloUrl: string;
let owner: Pair & { email: string };
let other: Pair & { email: string };

beforeAll(async () => {
  open = await buildTestApp({ env: { ...ORION_ENV, ...LEAN } });
  [owner, other] = [await register(open.app, { email: uniqueEmail('owner') }), await register(open.app)];
  solo = await buildTestApp({ env: { ...ORION_ENV, ...LEAN, ACCEPT_EXTERNAL_TOKENS: 'on', AUTHORIZED_USER_EMAIL: owner.email.toUpperCase() } });
  soloUrl = await listen(solo.app);
});
afterAll(async () => {
  await solo?.close();
  await open?.close();
});

function orionToken(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: TokenClaims = { iss: ORION.iss, aud: ORION.aud, sub, iat: now, exp: now + 300 };
  return signToken(claims, ORION);
}

function expectNotAuthorized(res: { statusCode: number; json(): unknown }): void {
  expect({ status: res.statusCode, code: (res.json() as { error?: { code?: string } }).error?.code }).toEqual({ status: 403, code: 'not_authorized_user' });
}

const exchange = (token: string) => solo.app.inject({ method: 'POST', url: '/auth/exchange', payload: { token, deviceId: 'browser-1', platform: 'web' } });

async function accountsWith(email: string): Promise<number> {
  const [{ count }] = await solo.container.db.query<[{ count: number }]>('SELECT count(*)::int AS count FROM users WHERE email = $1', [email]);
  return count;
}

describe('single-user mode (AUTHORIZED_USER_EMAIL)', () => {
  it('signs in only the authorized account with a password; another account learns nothing without its password', async () => {
    const signedIn = await login(solo.app, owner.email);
    expect(signedIn.user.id).toBe(owner.user.id);
    expectNotAuthorized(
      await solo.app.inject({ method: 'POST', url: '/auth/login', payload: { email: other.email, password: PASSWORD, deviceId: 'd', platform: 'web' } }),
    );
    const wrong = await solo.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: other.email, password: 'not it at all', deviceId: 'd', platform: 'web' },
    });
    expect(wrong.json()).toMatchObject({ error: { code: 'invalid_credentials' } });
  });

  it('registers no other account', async () => {
    const email = uniqueEmail('newcomer');
    expectNotAuthorized(
      await solo.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD, deviceId: 'd', platform: 'web' } }),
    );
    expect(await accountsWith(email)).toBe(0);
  });

  it("refreshes only the authorized account's sessions", async () => {
    const otherSession = await login(open.app, other.email, { deviceId: 'tablet-2' });
    expectNotAuthorized(await solo.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: otherSession.refreshToken } }));
    // refused, not spent: the same token still refreshes where the other account may sign in
    expect((await open.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: otherSession.refreshToken } })).statusCode).toBe(200);
    const ownerSession = await login(open.app, owner.email, { deviceId: 'tablet-1' });
    expect((await solo.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: ownerSession.refreshToken } })).statusCode).toBe(200);
  });

  it("refuses another account's existing access token on every route", async () => {
    const otherSession = await login(open.app, other.email, { deviceId: 'laptop-9' });
    for (const url of ['/auth/me', '/users/me', '/api/sessions/list']) expectNotAuthorized(await injectAs(solo.app, otherSession, { method: 'GET', url }));
    expect((await injectAs(solo.app, owner, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
  });

  it('exchanges and takes directly only tokens of the authorized account, creating no other', async () => {
    const stranger = uniqueEmail('stranger');
    expectNotAuthorized(await exchange(await orionToken(stranger)));
    expectNotAuthorized(await solo.app.inject({ method: 'GET', url: '/api/sessions/list', headers: bearer(await orionToken(stranger)) }));
    expect(await accountsWith(stranger)).toBe(0);

    // the owner's token: the password account links it once, then both ways work
    const token = await orionToken(owner.email);
    expect((await exchange(token)).json()).toMatchObject({ error: { code: 'account_link_required' } });
    const fresh = await login(solo.app, owner.email, { deviceId: `laptop-${randomUUID()}` });
    expect((await injectAs(solo.app, fresh, { method: 'POST', url: '/auth/exchange/link', payload: { token } })).statusCode).toBe(200);
    expect((await exchange(token)).json<Pair>().user.id).toBe(owner.user.id);
    expect((await solo.app.inject({ method: 'GET', url: '/api/sessions/list', headers: bearer(token) })).statusCode).toBe(200);

    // an identity the other account linked where it may sign in is still refused here
    const otherToken = await orionToken(`${other.email}`);
    const otherFresh = await login(open.app, other.email, { deviceId: `laptop-${randomUUID()}` });
    expect((await injectAs(open.app, otherFresh, { method: 'POST', url: '/auth/exchange/link', payload: { token: otherToken } })).statusCode).toBe(200);
    expectNotAuthorized(await exchange(otherToken));
    expectNotAuthorized(await solo.app.inject({ method: 'GET', url: '/api/sessions/list', headers: bearer(otherToken) }));
  });

  it('refuses Socket.io handshakes of another account', async () => {
    const otherSession = await login(open.app, other.email, { deviceId: 'phone-7' });
    expect(await refusal(soloUrl, otherSession.accessToken)).toMatchObject({ code: 'not_authorized_user' });
    const ownerSocket = await client(soloUrl, owner.accessToken);
    expect(ownerSocket.socket.connected).toBe(true);
    ownerSocket.close();
  });

  it('signs only the authorized account in on /ws, by its access token or a trusted issuer’s token', async () => {
    const otherSession = await login(open.app, other.email, { deviceId: 'phone-8' });
    for (const token of [otherSession.accessToken, await orionToken(uniqueEmail('ws-stranger'))]) {
      const refused = await openWs(wsUrl(soloUrl), { headers: { authorization: `Bearer ${token}` } });
      expect(await refused.next('error')).toMatchObject({ code: 'not_authorized_user' });
      refused.close();
    }
    const signedIn = await openWs(wsUrl(soloUrl));
    signedIn.send({ type: 'authenticate', token: owner.accessToken });
    expect(await signedIn.next('authenticated')).toMatchObject({ userId: owner.user.id });
    signedIn.close();
  });

  it('says so on GET /auth/providers', async () => {
    expect((await solo.app.inject({ method: 'GET', url: '/auth/providers' })).json()).toEqual({
      password: true,
      github: false,
      singleUser: true,
      issuers: [{ issuer: ORION.iss, kind: 'hs256' }],
    });
  });
});
