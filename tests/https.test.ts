import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { buildTestApp, capturingLogger, type TestApp } from './helpers/app.js';

const PRODUCTION = {
  NODE_ENV: 'production',
  SESSION_SECRET: 'a production session secret of 32+ chars',
  METRICS_TOKEN: 'a production metrics token',
  OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32),
};

const PLAIN = { 'x-forwarded-proto': 'http', host: 'api.parley.test' };
const TLS = { 'x-forwarded-proto': 'https', host: 'api.parley.test' };
const LOGIN = { email: 'someone@example.com', password: 'not the password', deviceId: 'd', platform: 'web' };

describe('FORCE_HTTPS in production behind a proxy (TRUST_PROXY=1)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { ...PRODUCTION, TRUST_PROXY: '1', HSTS_MAX_AGE: '600' } });
  });
  afterAll(() => t.close());

  it('is on by default', () => {
    expect(t.container.config.FORCE_HTTPS).toBe(true);
  });

  it('redirects a plain-HTTP GET or HEAD to the same URL on https, with HSTS', async () => {
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await t.app.inject({ method, url: '/.well-known/jwks.json?x=1', headers: PLAIN });
      expect(res.statusCode).toBe(301);
      expect(res.headers.location).toBe('https://api.parley.test/.well-known/jwks.json?x=1');
      expect(res.headers['strict-transport-security']).toBe('max-age=600; includeSubDomains');
    }
  });

  it('refuses any other method over plain HTTP with 403 https_required, and runs nothing', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      const res = await t.app.inject({ method, url: '/auth/login', headers: PLAIN, payload: LOGIN });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({ error: { code: 'https_required', message: expect.stringContaining('HTTPS only') } });
      expect(res.headers.location).toBeUndefined();
    }
  });

  it('serves what the proxy received over https', async () => {
    const jwks = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: TLS });
    expect(jwks.statusCode).toBe(200);
    expect(jwks.headers['strict-transport-security']).toBe('max-age=600; includeSubDomains');
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', headers: TLS, payload: LOGIN });
    expect(login.json().error.code).toBe('invalid_credentials');
  });

  it('answers the probes over plain HTTP, as load balancers and scrapers send them', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/health', headers: PLAIN })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/ready', headers: PLAIN })).statusCode).toBe(200);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: { ...PLAIN, authorization: `Bearer ${PRODUCTION.METRICS_TOKEN}` } });
    expect(metrics.statusCode).toBe(200);
    // and a probe without a proxy in the way (no X-Forwarded-Proto at all)
    expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });

  it('treats a request without X-Forwarded-Proto as plain HTTP', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { host: 'api.parley.test' } });
    expect(res.statusCode).toBe(301);
  });
});

describe('FORCE_HTTPS, the redirect target and who may say https', () => {
  it('redirects to APP_URL when it is https, whatever Host the request names', async () => {
    const t = await buildTestApp({ env: { ...PRODUCTION, TRUST_PROXY: '1', APP_URL: 'https://parley.example' } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/auth/sessions', headers: { 'x-forwarded-proto': 'http', host: 'evil.example' } });
      expect(res.statusCode).toBe(301);
      expect(res.headers.location).toBe('https://parley.example/auth/sessions');
    } finally {
      await t.close();
    }
  });

  it('believes X-Forwarded-Proto only from a trusted proxy: a client cannot claim https', async () => {
    // the trusted proxy is 10.0.0.1; this request comes from elsewhere
    const t = await buildTestApp({ env: { ...PRODUCTION, TRUST_PROXY: '10.0.0.1' } });
    try {
      const direct = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: TLS, remoteAddress: '198.51.100.9' });
      expect(direct.statusCode).toBe(301);
      const proxied = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: TLS, remoteAddress: '10.0.0.1' });
      expect(proxied.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('is off outside production unless turned on, and FORCE_HTTPS=off turns it off in production', async () => {
    const development = await buildTestApp({ env: { NODE_ENV: 'development', TRUST_PROXY: '1' } });
    try {
      expect((await development.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: PLAIN })).statusCode).toBe(200);
    } finally {
      await development.close();
    }
    const optedIn = await buildTestApp({ env: { TRUST_PROXY: '1', FORCE_HTTPS: 'on' } });
    try {
      expect((await optedIn.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: PLAIN })).statusCode).toBe(301);
    } finally {
      await optedIn.close();
    }
    const optedOut = await buildTestApp({ env: { ...PRODUCTION, TRUST_PROXY: '1', FORCE_HTTPS: 'off' } });
    try {
      expect((await optedOut.app.inject({ method: 'POST', url: '/auth/login', headers: PLAIN, payload: LOGIN })).json().error.code).toBe('invalid_credentials');
    } finally {
      await optedOut.close();
    }
  });

  it('needs TRUST_PROXY: refused when asked for without it; in production without it, a warning at start and no redirect', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-https-'));
    const attempt = () => loadConfig({ env: { FORCE_HTTPS: 'on' }, cwd });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^Invalid configuration: FORCE_HTTPS=on needs TRUST_PROXY[^\n]*$/);

    const { logger, lines } = capturingLogger('warn');
    const t = await buildTestApp({ env: PRODUCTION, logger });
    try {
      expect(t.container.config.FORCE_HTTPS).toBe(false);
      expect(lines.map((line) => line.msg)).toContain(
        'TRUST_PROXY is not set: plain-HTTP requests are not redirected to https (only a proxy in front can tell them, by X-Forwarded-Proto)',
      );
      expect((await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: PLAIN })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('security headers (SECURITY_HEADERS_ENABLED, HSTS_MAX_AGE)', () => {
  it('sends none of helmet headers when SECURITY_HEADERS_ENABLED=false, while the redirect still works', async () => {
    const t = await buildTestApp({ env: { ...PRODUCTION, TRUST_PROXY: '1', SECURITY_HEADERS_ENABLED: 'false' } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: TLS });
      expect(res.statusCode).toBe(200);
      for (const header of ['strict-transport-security', 'content-security-policy', 'x-content-type-options', 'x-frame-options']) {
        expect(res.headers[header]).toBeUndefined();
      }
      expect(res.headers['x-request-id']).toEqual(expect.any(String));
      expect((await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: PLAIN })).statusCode).toBe(301);
    } finally {
      await t.close();
    }
  });

  it('HSTS_MAX_AGE=0 tells browsers to forget the HSTS policy', async () => {
    const t = await buildTestApp({ env: { HSTS_MAX_AGE: '0' } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/health' });
      expect(res.headers['strict-transport-security']).toBe('max-age=0; includeSubDomains');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    } finally {
      await t.close();
    }
  });
});
