import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { bearer, injectAs, PASSWORD, register, uniqueEmail, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { listen } from './helpers/realtime.js';
import { openWs, wsUrl } from './helpers/ws.js';
import { providerKey, signToken, startFakeJwks, unsecuredToken, type FakeJwks, type ProviderKey, type TokenClaims } from './helpers/fake-jwks.js';

/** The HS256 issuers: a TRUSTED_ISSUERS entry, and document 001's front end through its own settings. */
const FRONT = { iss: 'https://front.parley.test', aud: 'parley-front', secret: randomBytes(32).toString('hex') };
const ORION = { iss: 'https://www.sidekickportal.test', aud: 'orion-core', secret: randomBytes(64).toString('hex') };
/** JWKS issuers, each on its own path of the fake provider. */
const RSA = { iss: 'https://rsa.parley.test', aud: 'parley-rsa' };
const EC = { iss: 'https://ec.parley.test', aud: 'parley-ec' };
const ROTATING = { iss: 'https://rotating.parley.test', aud: 'parley-rotating' };
const REDIRECTING = { iss: 'https://redirecting.parley.test', aud: 'parley-redirecting' };
const HANGING = { iss: 'https://hanging.parley.test', aud: 'parley-hanging' };
const REFETCH_INTERVAL_MS = 30_000;

const clock = manualClock();
let jwks: FakeJwks;
let rsaKey: ProviderKey;
let ecKey: ProviderKey;
/** ACCEPT_EXTERNAL_TOKENS=on, on the manual clock. */
let t: TestApp;
/** ACCEPT_EXTERNAL_TOKENS off. */
let closed: TestApp;

function trustedIssuers(): string {
  return JSON.stringify([
    { issuer: FRONT.iss, audience: FRONT.aud, secret: FRONT.secret },
    { issuer: RSA.iss, audience: RSA.aud, jwksUrl: jwks.url('rsa') },
    { issuer: EC.iss, audience: [EC.aud, 'another-app'], jwksUrl: jwks.url('ec'), algorithms: ['ES256'] },
    { issuer: ROTATING.iss, audience: ROTATING.aud, jwksUrl: jwks.url('rotating') },
    { issuer: REDIRECTING.iss, audience: REDIRECTING.aud, jwksUrl: jwks.url('redirecting') },
    { issuer: HANGING.iss, audience: HANGING.aud, jwksUrl: jwks.url('hanging') },
  ]);
}

beforeAll(async () => {
  jwks = await startFakeJwks();
  [rsaKey, ecKey] = await Promise.all([providerKey('RS256', 'rsa-1'), providerKey('ES256', 'ec-1')]);
  jwks.path('rsa').keys = [rsaKey.jwk];
  jwks.path('ec').keys = [ecKey.jwk];
  jwks.path('hanging').mode = { kind: 'hang' };
  const env = {
    TRUSTED_ISSUERS: trustedIssuers(),
    ORION_SHARED_JWT_SECRET: ORION.secret,
    ORION_SHARED_JWT_ISS: ORION.iss,
    ORION_SHARED_JWT_AUD: ORION.aud,
    JWKS_TIMEOUT: '300ms',
    JWKS_REFETCH_INTERVAL: `${REFETCH_INTERVAL_MS}ms`,
    // no background work is needed here: the apps keep to a few database connections on the shared test server
    WORKERS: 'off',
    DATABASE_POOL_SIZE: '4',
  };
  // two first starts on one database at once: the activity-log partition is made under a lock
  [t, closed] = await Promise.all([
    buildTestApp({ clock, env: { ...env, ACCEPT_EXTERNAL_TOKENS: 'on' } }),
    buildTestApp({ env: { ...env, ACCEPT_EXTERNAL_TOKENS: 'off' } }),
  ]);
});
afterAll(async () => {
  await t?.close();
  await closed?.close();
  await jwks?.close();
});

const nowSeconds = () => Math.floor(clock.now().getTime() / 1000);

function claims(issuer: { iss: string; aud: string }, sub: string, extra: Partial<TokenClaims> = {}): TokenClaims {
  const iat = nowSeconds();
  return { iss: issuer.iss, aud: issuer.aud, sub, iat, exp: iat + 300, ...extra };
}

const exchange = (token: string, app = t.app, deviceId = 'browser-1') =>
  app.inject({ method: 'POST', url: '/auth/exchange', payload: { token, deviceId, platform: 'web' } });

const link = (caller: Pair, body: Record<string, unknown>) => injectAs(t.app, caller, { method: 'POST', url: '/auth/exchange/link', payload: body });

async function identities(subject: string): Promise<Array<{ user_id: string; issuer: string; email: string | null }>> {
  return t.container.db.query('SELECT user_id, issuer, email FROM external_identities WHERE subject = $1', [subject]);
}

async function activity(userId: string): Promise<Array<{ type: string; metadata: Record<string, unknown> }>> {
  return t.container.db.query('SELECT type, metadata FROM activity_logs WHERE user_id = $1 ORDER BY created_at, type', [userId]);
}

function expectError(res: { statusCode: number; json(): unknown }, status: number, code: string): void {
  expect({ status: res.statusCode, code: (res.json() as { error?: { code?: string } }).error?.code }).toEqual({ status, code });
}

describe('POST /auth/exchange', () => {
  it("signs the 001 front end's HS256 token (sub is the e-mail) in to a new account, then to the same one", async () => {
    const email = uniqueEmail('orion');
    const first = await exchange(await signToken(claims(ORION, email), ORION));
    expect(first.statusCode, first.body).toBe(200);
    const pair = first.json<Pair & { tokenType: string; expiresIn: number }>();
    expect(pair).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email, role: 'student' } });
    const me = await injectAs(t.app, pair, { method: 'GET', url: '/auth/me' });
    expect(me.json()).toMatchObject({ id: pair.user.id, email });
    const refreshed = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } });
    expect(refreshed.statusCode).toBe(200);

    clock.advance(1_000);
    const again = await exchange(await signToken(claims(ORION, email), ORION), t.app, 'phone-1');
    expect(again.json<Pair>().user.id).toBe(pair.user.id);
    expect(await identities(email)).toEqual([{ user_id: pair.user.id, issuer: ORION.iss, email }]);
    const sessions = await injectAs(t.app, again.json<Pair>(), { method: 'GET', url: '/auth/sessions' });
    expect(sessions.json<{ items: unknown[] }>().items).toHaveLength(2);
    const log = await activity(pair.user.id);
    expect(log.filter((entry) => entry.type === 'login')).toHaveLength(2);
    expect(log).toEqual(
      expect.arrayContaining([
        { type: 'register', metadata: { via: 'external_token', issuer: ORION.iss } },
        { type: 'external_identity_linked', metadata: { issuer: ORION.iss, how: 'new_account' } },
      ]),
    );
  });

  it('makes one account for concurrent first exchanges of one identity, and a new one after that account is deleted', async () => {
    const subject = `user_${randomUUID()}`;
    const email = uniqueEmail('race');
    const tokens = await Promise.all(
      Array.from({ length: 5 }, (_, index) => signToken(claims(RSA, subject, { extra: { email, jti: String(index) } }), rsaKey)),
    );
    const answers = await Promise.all(tokens.map((token, index) => exchange(token, t.app, `device-${index}`)));
    expect(answers.map((res) => res.statusCode)).toEqual([200, 200, 200, 200, 200]);
    const userIds = new Set(answers.map((res) => res.json<Pair>().user.id));
    expect(userIds.size).toBe(1);
    expect(await identities(subject)).toHaveLength(1);

    const [userId] = [...userIds];
    const pair = answers[0]!.json<Pair>();
    expect((await injectAs(t.app, pair, { method: 'DELETE', url: '/users/me', payload: {} })).statusCode).toBe(204);
    expect(await identities(subject)).toEqual([]);
    const after = await exchange(await signToken(claims(RSA, subject, { extra: { email } }), rsaKey));
    expect(after.statusCode, after.body).toBe(200);
    expect(after.json<Pair>().user.id).not.toBe(userId);
  });

  it("finds an RS256 provider's user by issuer and subject, never by e-mail: a changed e-mail claim is the same account", async () => {
    const subject = `user_${randomUUID()}`;
    const [before, after] = [uniqueEmail('rsa'), uniqueEmail('rsa-new')];
    const first = await exchange(await signToken(claims(RSA, subject, { extra: { email: before } }), rsaKey));
    expect(first.statusCode, first.body).toBe(200);
    const userId = first.json<Pair>().user.id;
    const changed = await exchange(await signToken(claims(RSA, subject, { extra: { email: after } }), rsaKey));
    expect(changed.json<Pair>().user).toMatchObject({ id: userId, email: before });
    // another subject with the address the first one moved to is another person
    const other = await exchange(await signToken(claims(RSA, `user_${randomUUID()}`, { extra: { email: after } }), rsaKey));
    expect(other.statusCode).toBe(200);
    expect(other.json<Pair>().user.id).not.toBe(userId);
  });

  it('gives an ES256 token without an e-mail (Privy) an account of its own, under any of its audiences', async () => {
    const subject = `did:privy:${randomUUID()}`;
    const first = await exchange(await signToken(claims(EC, subject), ecKey));
    expect(first.statusCode, first.body).toBe(200);
    const user = first.json<Pair>().user;
    expect(user.email).toMatch(/^[0-9a-f]{32}@external\.invalid$/);
    const again = await exchange(await signToken(claims({ iss: EC.iss, aud: 'another-app' }, subject), ecKey));
    expect(again.json<Pair>().user.id).toBe(user.id);
    // the issuer pinned ES256: an RS256 token is refused even with a kid it publishes
    const rs256 = await signToken(claims(EC, subject), rsaKey, { kid: ecKey.kid });
    expectError(await exchange(rs256), 401, 'invalid_token');
  });

  it("does not take over a password account with the token's e-mail (409), until that account links the identity", async () => {
    const carol = await register(t.app);
    const subject = `user_${randomUUID()}`;
    const token = await signToken(claims(RSA, subject, { extra: { email: carol.email.toUpperCase() } }), rsaKey);
    expectError(await exchange(token), 409, 'account_link_required');
    expect(await identities(subject)).toEqual([]);
    const [{ count }] = await t.container.db.query<[{ count: number }]>('SELECT count(*)::int AS count FROM users WHERE email = $1', [carol.email]);
    expect(count).toBe(1);

    const linked = await link(carol, { token });
    expect(linked.statusCode, linked.body).toBe(200);
    expect(linked.json()).toMatchObject({ issuer: RSA.iss, subject, email: carol.email });
    const signedIn = await exchange(token);
    expect(signedIn.statusCode).toBe(200);
    expect(signedIn.json<Pair>().user.id).toBe(carol.user.id);
    expect(await activity(carol.user.id)).toEqual(
      expect.arrayContaining([{ type: 'external_identity_linked', metadata: { issuer: RSA.iss, how: 'confirmed' } }]),
    );

    expect((await link(carol, { token })).statusCode).toBe(200);
    const dave = await register(t.app);
    expectError(await link(dave, { token }), 409, 'identity_already_linked');
    expect(await identities(subject)).toEqual([{ user_id: carol.user.id, issuer: RSA.iss, email: carol.email }]);
  });

  it('links only with the password once the sign-in is not recent, and only a valid token', async () => {
    const erin = await register(t.app);
    expectError(await link(erin, { token: await signToken(claims(RSA, 'erin'), { secret: FRONT.secret }) }), 401, 'invalid_token');
    clock.advance(11 * 60_000);
    const token = await signToken(claims(RSA, `user_${randomUUID()}`), rsaKey);
    expectError(await link(erin, { token }), 403, 'recent_login_required');
    expectError(await link(erin, { token, password: 'not the password' }), 401, 'invalid_credentials');
    expect((await link(erin, { token, password: PASSWORD })).statusCode).toBe(200);
    expect((await exchange(token)).json<Pair>().user.id).toBe(erin.user.id);
    expectError(await t.app.inject({ method: 'POST', url: '/auth/exchange/link', payload: { token } }), 401, 'unauthorized');
  });

  it('refuses alg confusion (HS256 signed with the public key), alg none and a wrong secret, creating nothing', async () => {
    const subject = `user_${randomUUID()}`;
    const confused = await signToken(claims(RSA, subject), { secret: rsaKey.publicPem }, { kid: rsaKey.kid });
    expectError(await exchange(confused), 401, 'invalid_token');
    for (const issuer of [RSA, FRONT, ORION]) expectError(await exchange(unsecuredToken(claims(issuer, subject))), 401, 'invalid_token');
    expectError(await exchange(await signToken(claims(FRONT, subject), { secret: randomBytes(32).toString('hex') })), 401, 'invalid_token');
    // an HS256 issuer cannot be fed its own secret's lookalike: the RSA PEM is not its secret either
    expectError(await exchange(await signToken(claims(FRONT, subject), { secret: rsaKey.publicPem })), 401, 'invalid_token');
    expect(await identities(subject)).toEqual([]);
  });

  it('checks exp, nbf, iat, aud and iss, with a 30 s leeway', async () => {
    const subject = uniqueEmail('claims');
    const now = nowSeconds();
    const sign = (issuer: { iss: string; aud: string }, extra: Partial<TokenClaims> = {}) => signToken(claims(issuer, subject, extra), FRONT);
    expectError(await exchange(await sign(FRONT, { iat: now - 600, exp: now - 60 })), 401, 'token_expired');
    expectError(await exchange(await sign(FRONT, { extra: { nbf: now + 300 } })), 401, 'invalid_token');
    expectError(await exchange(await sign(FRONT, { iat: now + 300, exp: now + 600 })), 401, 'invalid_token');
    expectError(await exchange(await sign({ iss: FRONT.iss, aud: 'someone-else' })), 401, 'invalid_token');
    // FRONT's secret cannot speak for ORION, another trusted issuer
    expectError(await exchange(await sign(ORION)), 401, 'invalid_token');
    expectError(await exchange(await sign({ iss: 'https://evil.test', aud: FRONT.aud })), 401, 'untrusted_issuer');
    expectError(await exchange('not-a-jwt-at-all-but-long-enough'), 401, 'invalid_token');
    expectError(await exchange(await sign(FRONT, { sub: '' })), 401, 'invalid_token');
    expect(await identities(subject)).toEqual([]);
    // within the leeway: expired 10 s ago, issued 10 s ahead
    expect((await exchange(await sign(FRONT, { iat: now - 310, exp: now - 10 }))).statusCode).toBe(200);
    expect((await exchange(await sign(FRONT, { iat: now + 10, exp: now + 310 }))).statusCode).toBe(200);
  });

  it("fetches a rotated provider's JWKS again for an unknown kid, at most once per interval, and accepts the new key", async () => {
    const jwksPath = jwks.path('rotating');
    const [oldKey, newKey, strayKey] = await Promise.all([providerKey('RS256', 'old'), providerKey('RS256', 'new'), providerKey('RS256', 'stray')]);
    jwksPath.keys = [oldKey.jwk];
    const subject = `user_${randomUUID()}`;
    expect((await exchange(await signToken(claims(ROTATING, subject), oldKey))).statusCode).toBe(200);
    expect(jwksPath.hits).toBe(1);

    jwksPath.keys = [newKey.jwk];
    // just fetched: the new kid is unknown for now, and the provider is not asked again
    expectError(await exchange(await signToken(claims(ROTATING, subject), newKey)), 401, 'invalid_token');
    expect(jwksPath.hits).toBe(1);

    clock.advance(REFETCH_INTERVAL_MS);
    const rotated = await exchange(await signToken(claims(ROTATING, subject), newKey));
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect(jwksPath.hits).toBe(2);

    // a flood of made-up kids costs the provider nothing more within the interval
    const flood = await Promise.all(
      Array.from({ length: 20 }, async () => exchange(await signToken(claims(ROTATING, subject), strayKey, { kid: randomUUID() }))),
    );
    expect(flood.map((res) => res.statusCode)).toEqual(Array<number>(20).fill(401));
    expect(jwksPath.hits).toBe(2);
    clock.advance(REFETCH_INTERVAL_MS);
    await Promise.all(Array.from({ length: 5 }, async () => exchange(await signToken(claims(ROTATING, subject), strayKey, { kid: randomUUID() }))));
    expect(jwksPath.hits).toBe(3);
  });

  it('refuses a JWKS that redirects, without following it', async () => {
    const target = jwks.path('redirect-target');
    target.keys = [rsaKey.jwk];
    jwks.path('redirecting').mode = { kind: 'redirect', location: jwks.url('redirect-target') };
    const res = await exchange(await signToken(claims(REDIRECTING, `user_${randomUUID()}`), rsaKey));
    expectError(res, 503, 'identity_provider_unavailable');
    expect(jwks.path('redirecting').hits).toBe(1);
    expect(target.hits).toBe(0);
  });

  it('answers 503 when the JWKS hangs, after JWKS_TIMEOUT, and does not ask again at once', async () => {
    const subject = `user_${randomUUID()}`;
    const [res] = await Promise.all([exchange(await signToken(claims(HANGING, subject), rsaKey)), jwks.hung()]);
    expectError(res, 503, 'identity_provider_unavailable');
    expectError(await exchange(await signToken(claims(HANGING, subject), rsaKey)), 503, 'identity_provider_unavailable');
    expect(jwks.path('hanging').hits).toBe(1);
    expect(await identities(subject)).toEqual([]);
  });

  it('refuses malformed bodies', async () => {
    for (const payload of [{}, { token: 'x', deviceId: 'd', platform: 'web' }, { token: 'x'.repeat(20), deviceId: 'd', platform: 'tv' }]) {
      expectError(await t.app.inject({ method: 'POST', url: '/auth/exchange', payload }), 400, 'validation_failed');
    }
  });
});

describe("a trusted issuer's token as the bearer token of the chat routes", () => {
  it('with ACCEPT_EXTERNAL_TOKENS=on, is the linked (or a new) account on /api/sessions/*', async () => {
    const email = uniqueEmail('front');
    const token = await signToken(claims(ORION, email), ORION);
    const empty = await injectAs(t.app, token, { method: 'GET', url: '/api/sessions/list' });
    expect(empty.statusCode, empty.body).toBe(200);
    expect(empty.json()).toEqual({ items: [], nextCursor: null });
    const created = await injectAs(t.app, token, { method: 'POST', url: '/api/sessions/create', payload: { title: 'Small talk' } });
    expect(created.statusCode).toBe(201);
    const [identity] = await identities(email);
    // the same account as the exchange signs in to, and as the Parley token sees
    const pair = (await exchange(await signToken(claims(ORION, email), ORION))).json<Pair>();
    expect(pair.user.id).toBe(identity!.user_id);
    const listed = await injectAs(t.app, pair, { method: 'GET', url: '/api/sessions/list' });
    expect(listed.json<{ items: Array<{ title: string }> }>().items.map((thread) => thread.title)).toEqual(['Small talk']);
    // only routes that say so take it
    expectError(await injectAs(t.app, token, { method: 'GET', url: '/auth/me' }), 401, 'invalid_token');
  });

  it('refuses a banned account, an e-mail of a password account and a bad token', async () => {
    const email = uniqueEmail('banned');
    const token = await signToken(claims(ORION, email), ORION);
    expect((await injectAs(t.app, token, { method: 'GET', url: '/api/sessions/list' })).statusCode).toBe(200);
    await t.container.db.query('UPDATE users SET is_banned = true WHERE email = $1', [email]);
    expectError(await injectAs(t.app, token, { method: 'GET', url: '/api/sessions/list' }), 403, 'account_banned');

    const owner = await register(t.app);
    const taken = await signToken(claims(ORION, owner.email), ORION);
    expectError(await injectAs(t.app, taken, { method: 'GET', url: '/api/sessions/list' }), 409, 'account_link_required');
    expect(await identities(owner.email)).toEqual([]);
    const expired = await signToken(claims(ORION, email, { iat: nowSeconds() - 900, exp: nowSeconds() - 600 }), ORION);
    expectError(await injectAs(t.app, expired, { method: 'GET', url: '/api/sessions/list' }), 401, 'token_expired');
  });

  it('with ACCEPT_EXTERNAL_TOKENS=on, signs in on /ws as the linked account, and checks the token again at each message', async () => {
    const email = uniqueEmail('ws');
    const token = await signToken(claims(ORION, email), ORION);
    const socket = await openWs(wsUrl(await listen(t.app)), { headers: { authorization: `Bearer ${token}` } });
    const authenticated = await socket.next('authenticated');
    const [identity] = await identities(email);
    expect(authenticated).toMatchObject({ userId: identity!.user_id });
    // banned meanwhile: the next message ends the connection
    await t.container.db.query('UPDATE users SET is_banned = true WHERE id = $1', [identity!.user_id]);
    socket.send({ type: 'message', content: 'Hello there' });
    expect(await socket.next('error')).toMatchObject({ code: 'account_banned' });
    expect((await socket.closed).code).toBe(1008);
  });

  it('with ACCEPT_EXTERNAL_TOKENS off, is refused there, while the exchange still works', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await signToken({ iss: ORION.iss, aud: ORION.aud, sub: uniqueEmail('off'), iat: now, exp: now + 300 }, ORION);
    expectError(await closed.app.inject({ method: 'GET', url: '/api/sessions/list', headers: bearer(token) }), 401, 'invalid_token');
    const pair = await exchange(token, closed.app);
    expect(pair.statusCode).toBe(200);
    expect((await injectAs(closed.app, pair.json<Pair>(), { method: 'GET', url: '/api/sessions/list' })).statusCode).toBe(200);
    const socket = await openWs(wsUrl(await listen(closed.app)), { headers: { authorization: `Bearer ${token}` } });
    expect(await socket.next('error')).toMatchObject({ code: 'invalid_token' });
    socket.close();
  });
});

describe('GET /auth/providers', () => {
  it('says what a login page may offer, and no secret or URL', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/providers' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      password: true,
      github: false,
      singleUser: false,
      issuers: [
        { issuer: FRONT.iss, kind: 'hs256' },
        { issuer: RSA.iss, kind: 'jwks' },
        { issuer: EC.iss, kind: 'jwks' },
        { issuer: ROTATING.iss, kind: 'jwks' },
        { issuer: REDIRECTING.iss, kind: 'jwks' },
        { issuer: HANGING.iss, kind: 'jwks' },
        { issuer: ORION.iss, kind: 'hs256' },
      ],
    });
    for (const secret of [FRONT.secret, ORION.secret, jwks.origin]) expect(res.body).not.toContain(secret);
  });
});

describe('TRUSTED_ISSUERS and its neighbours', () => {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-issuers-'));
  const secret = 's'.repeat(40);
  const load = (env: Record<string, string>) => () => loadConfig({ env, cwd });

  it('refuses a malformed list on one line that names the entry and never echoes it', () => {
    const cases: Array<[string, RegExp]> = [
      [`[{"issuer":"a","audience":"b","secret":"${secret}"`, /TRUSTED_ISSUERS is not JSON/],
      [`{"issuer":"a","audience":"b","secret":"${secret}"}`, /TRUSTED_ISSUERS expected a JSON list/],
      [`[{"issuer":"a","secret":"${secret}"}]`, /TRUSTED_ISSUERS entry 1: audience: /],
      [`[{"issuer":"a","audience":"b","secret":"${secret}","jwksUrl":"https://a.test/jwks"}]`, /entry 1 needs either "secret" \(HS256\) or "jwksUrl"/],
      [`[{"issuer":"a","audience":"b","secret":"${secret}"},{"issuer":"c","audience":"d","secret":"short"}]`, /entry 2: secret: secret must be at least 32/],
      [`[{"issuer":"a","audience":"b","jwksUrl":"https://a.test/jwks","algorithms":["HS256"]}]`, /entry 1: algorithms\.0: /],
      [`[{"issuer":"a","audience":"b","secret":"${secret}"},{"issuer":"a","audience":"c","secret":"${secret}"}]`, /lists an issuer twice/],
      [`[{"issuer":"parley","audience":"b","secret":"${secret}"}]`, /cannot trust JWT_ISSUER/],
    ];
    for (const [value, message] of cases) {
      for (const NODE_ENV of ['production', 'development']) {
        const attempt = load({ NODE_ENV, TRUSTED_ISSUERS: value });
        expect(attempt, value).toThrow(ConfigError);
        expect(attempt, value).toThrow(message);
        try {
          attempt();
        } catch (error) {
          expect((error as Error).message).not.toContain('\n');
          expect((error as Error).message).not.toContain(secret);
        }
      }
    }
  });

  it('wants an https JWKS in production, the three ORION settings together, and reads a good list', () => {
    const plain = '[{"issuer":"a","audience":"b","jwksUrl":"http://a.test/jwks"}]';
    expect(load({ NODE_ENV: 'production', TRUSTED_ISSUERS: plain })).toThrow(/entry 1: jwksUrl must be https in production/);
    expect(load({ TRUSTED_ISSUERS: plain })().TRUSTED_ISSUERS).toEqual([
      { kind: 'jwks', issuer: 'a', audience: 'b', jwksUrl: 'http://a.test/jwks', algorithms: ['RS256'], emailClaim: 'email' },
    ]);
    expect(load({ ORION_SHARED_JWT_SECRET: secret, ORION_SHARED_JWT_ISS: 'https://front.test' })).toThrow(/ORION_SHARED_JWT_AUD is missing/);
    expect(load({ AUTHORIZED_USER_EMAIL: 'not an e-mail' })).toThrow(/AUTHORIZED_USER_EMAIL/);
    expect(load({ AUTHORIZED_USER_EMAIL: ' Owner@Example.COM ' })().AUTHORIZED_USER_EMAIL).toBe('owner@example.com');
  });
});
