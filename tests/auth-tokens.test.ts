import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, decodeJwt, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyFiles, rotateKeyFiles } from '../src/infra/keys.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';

const clock = manualClock();
let t: TestApp;
let account: Awaited<ReturnType<typeof register>>;

beforeAll(async () => {
  t = await buildTestApp({ clock });
  account = await register(t.app);
});
afterAll(() => t.close());

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function me(token: string) {
  const res = await injectAs(t.app, token, { method: 'GET', url: '/auth/me' });
  return { status: res.statusCode, code: res.statusCode === 200 ? 'ok' : (res.json().error.code as string) };
}

function claims(overrides: Record<string, unknown> = {}) {
  const now = Math.floor(clock.now().getTime() / 1000);
  return {
    sub: account.user.id,
    email: account.email,
    role: 'student',
    sid: decodeJwt(account.accessToken).sid,
    iss: 'parley',
    aud: 'parley-api',
    iat: now,
    exp: now + 600,
    ...overrides,
  };
}

const privateKey = () => t.container.keys.privateKey;

describe('access tokens', () => {
  it('carry sub, email, role, sid, iss, aud, iat and exp, signed RS256 with a kid', async () => {
    const [header] = account.accessToken.split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'RS256', kid: t.container.keys.kid, typ: 'JWT' });
    const payload = decodeJwt(account.accessToken);
    expect(payload).toMatchObject({ sub: account.user.id, email: account.email, role: 'student', iss: 'parley', aud: 'parley-api' });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(await me(account.accessToken)).toEqual({ status: 200, code: 'ok' });
  });

  it('rejects alg "none"', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    expect(await me(token)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('rejects HS256 signed with the public key as the secret', async () => {
    const publicPem = t.container.keys.publicKey.export({ type: 'spki', format: 'pem' });
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: t.container.keys.kid }).sign(new TextEncoder().encode(String(publicPem)));
    expect(await me(token)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('rejects a token signed by a key it does not know, or naming an unknown kid', async () => {
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const foreign = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: t.container.keys.kid }).sign(stranger);
    expect(await me(foreign)).toEqual({ status: 401, code: 'invalid_token' });
    const wrongKid = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'someone-else' }).sign(privateKey());
    expect(await me(wrongKid)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('rejects the wrong issuer or audience, even when signed with our key', async () => {
    const otherIssuer = await new SignJWT(claims({ iss: 'evil' })).setProtectedHeader({ alg: 'RS256', kid: t.container.keys.kid }).sign(privateKey());
    const otherAudience = await new SignJWT(claims({ aud: 'other-api' })).setProtectedHeader({ alg: 'RS256', kid: t.container.keys.kid }).sign(privateKey());
    expect(await me(otherIssuer)).toEqual({ status: 401, code: 'invalid_token' });
    expect(await me(otherAudience)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('rejects a tampered payload', async () => {
    const [header, , signature] = account.accessToken.split('.');
    const tampered = `${header}.${b64({ ...decodeJwt(account.accessToken), role: 'admin' })}.${signature}`;
    expect(await me(tampered)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('rejects a token issued in the future beyond a small leeway, and one that lives longer than configured', async () => {
    const now = Math.floor(clock.now().getTime() / 1000);
    const sign = (overrides: Record<string, unknown>) =>
      new SignJWT(claims(overrides)).setProtectedHeader({ alg: 'RS256', kid: t.container.keys.kid }).sign(privateKey());
    expect(await me(await sign({ iat: now + 5 }))).toEqual({ status: 200, code: 'ok' });
    expect(await me(await sign({ iat: now + 3600, exp: now + 3600 + 600 }))).toEqual({ status: 401, code: 'invalid_token' });
    expect(await me(await sign({ iat: now, exp: now + 30 * 86_400 }))).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('answers token_expired once the token has expired', async () => {
    const pair = await register(t.app);
    clock.advance(15 * 60_000 + 1_000);
    try {
      expect(await me(pair.accessToken)).toEqual({ status: 401, code: 'token_expired' });
    } finally {
      clock.advance(-(15 * 60_000 + 1_000));
    }
  });
});

describe('GET /.well-known/jwks.json', () => {
  it('lets an independent verifier check our tokens through the live endpoint', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(account.accessToken, jwks, {
      issuer: 'parley',
      audience: 'parley-api',
      algorithms: ['RS256'],
      currentDate: clock.now(),
    });
    expect(payload.sub).toBe(account.user.id);
    expect(protectedHeader.kid).toBe(t.container.keys.kid);
    const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const body = (await res.json()) as { keys: Array<Record<string, string>> };
    expect(body.keys).toEqual([expect.objectContaining({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: t.container.keys.kid, e: 'AQAB' })]);
    expect(JSON.stringify(body)).not.toMatch(/"d"|"p"|"q"/);
  });
});

describe('key rotation', () => {
  it('signs with the new key while tokens of the rotated-out key keep verifying, both in the JWKS', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-keys-'));
    const { kid: firstKid } = await generateKeyFiles(dir, { markAsDevelopment: false });
    const before = await buildTestApp({ env: { JWT_KEYS_DIR: dir } });
    const old = await register(before.app);
    await before.close();

    const { retiring, kid } = await rotateKeyFiles(dir);
    expect(retiring).toBe(firstKid);
    expect(readFileSync(path.join(dir, 'kid'), 'utf8').trim()).toBe(kid);
    const after = await buildTestApp({ env: { JWT_KEYS_DIR: dir } });
    try {
      expect((await injectAs(after.app, old, { method: 'GET', url: '/auth/me' })).statusCode).toBe(200);
      const fresh = await register(after.app);
      const header = JSON.parse(Buffer.from(fresh.accessToken.split('.')[0]!, 'base64url').toString());
      expect(header.kid).toBe(kid);
      const kids = (await after.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((key: { kid: string }) => key.kid);
      expect(kids).toEqual([kid, firstKid]);
    } finally {
      await after.close();
    }
  });
});
