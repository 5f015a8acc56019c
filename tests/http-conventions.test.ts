import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildTestApp, type TestApp } from './helpers/app.js';

describe('response conventions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({
      env: { FRONTEND_URL: 'https://app.parley.test,https://admin.parley.test' },
      extend: (app) => {
        app.get(
          '/test/user',
          { schema: { response: { 200: z.object({ id: z.string(), email: z.string() }) } } },
          // the handler returns a whole row; only declared fields may leave the server
          async () => ({ id: 'u1', email: 'a@b.co', passwordHash: '$2b$12$secret' }),
        );
      },
    });
  });
  afterAll(() => t.close());

  it('sends helmet security headers on every response', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
  });

  it('writes only the fields a response schema declares', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/user' });
    expect(res.json()).toEqual({ id: 'u1', email: 'a@b.co' });
    expect(res.body).not.toContain('secret');
  });

  it('allows the configured browser origins with credentials, and no other', async () => {
    const allowed = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://admin.parley.test' } });
    expect(allowed.headers['access-control-allow-origin']).toBe('https://admin.parley.test');
    expect(allowed.headers['access-control-allow-credentials']).toBe('true');
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/health',
      headers: { origin: 'https://app.parley.test', 'access-control-request-method': 'POST' },
    });
    expect(preflight.statusCode).toBe(204);
    const foreign = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });

  it.each(['GET', 'POST', 'PATCH', 'DELETE'])('lets the front end preflight a %s with the headers the API reads', async (method) => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/users/me',
      headers: {
        origin: 'https://app.parley.test',
        'access-control-request-method': method,
        'access-control-request-headers': 'authorization,content-type,idempotency-key,if-match,x-csrf-token,x-request-id',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.parley.test');
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    const methods = String(preflight.headers['access-control-allow-methods']).split(/,\s*/);
    expect(methods).toContain(method);
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'if-match', 'x-csrf-token', 'x-request-id']));
    expect(Number(preflight.headers['access-control-max-age'])).toBeGreaterThan(0);
  });

  it('lets the front end read the request id, Retry-After and ETag of a response', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://app.parley.test' } });
    const exposed = String(res.headers['access-control-expose-headers']).toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'retry-after', 'etag']));
  });

  it('does not preflight a foreign origin', async () => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/users/me',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'DELETE' },
    });
    // without an allowed origin the browser refuses the request, whatever else the preflight says
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('behind a proxy', () => {
  it('with TRUST_PROXY, limits by the client address from X-Forwarded-For', async () => {
    const t = await buildTestApp({
      env: { TRUST_PROXY: 'true', RATE_LIMIT_REQUESTS: '2' },
      extend: (app) => app.get('/test/ip', async (request) => ({ ip: request.ip })),
    });
    try {
      const from = (ip: string) => t.app.inject({ method: 'GET', url: '/test/ip', headers: { 'x-forwarded-for': ip }, remoteAddress: '10.0.0.1' });
      expect((await from('198.51.100.7')).json()).toEqual({ ip: '198.51.100.7' });
      expect((await from('198.51.100.7')).statusCode).toBe(200);
      expect((await from('198.51.100.7')).statusCode).toBe(429);
      expect((await from('198.51.100.8')).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('without TRUST_PROXY, ignores X-Forwarded-For (a client cannot pick its own address)', async () => {
    const t = await buildTestApp({ extend: (app) => app.get('/test/ip', async (request) => ({ ip: request.ip })) });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/test/ip', headers: { 'x-forwarded-for': '198.51.100.7' }, remoteAddress: '10.0.0.1' });
      expect(res.json()).toEqual({ ip: '10.0.0.1' });
    } finally {
      await t.close();
    }
  });

  it('sends no security headers when SECURITY_HEADERS_ENABLED is off', async () => {
    const t = await buildTestApp({ env: { SECURITY_HEADERS_ENABLED: 'false' } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/health' });
      expect(res.headers['content-security-policy']).toBeUndefined();
      expect(res.headers['x-request-id']).toBeDefined();
    } finally {
      await t.close();
    }
  });
});
