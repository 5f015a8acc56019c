import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDurationMs } from '../src/config/duration.js';
import { ConfigError, loadConfig } from '../src/config/load.js';

function emptyDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'parley-config-'));
}

describe('loadConfig', () => {
  it('starts on documented defaults with nothing set', () => {
    const config = loadConfig({ env: {}, cwd: emptyDir() });
    expect(config).toMatchObject({ NODE_ENV: 'development', PORT: 5503, HOST: '0.0.0.0', TRUST_PROXY: false, RATE_LIMIT_WINDOW: 60_000 });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.SESSION_SECRET.length).toBeGreaterThanOrEqual(32);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the variable and what is wrong, on one line', () => {
    const attempt = () => loadConfig({ env: { PORT: 'eighty', DATABASE_URL: 'not a url' }, cwd: emptyDir() });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toMatch(/PORT .*\(got "eighty"\)/);
      expect(message).toContain('DATABASE_URL');
    }
  });

  it('never echoes a secret value in the error', () => {
    expect(() => loadConfig({ env: { SESSION_SECRET: 'short-secret-value' }, cwd: emptyDir() })).toThrow(/SESSION_SECRET must be at least 32 characters$/);
  });

  it('refuses to start in production without SESSION_SECRET', () => {
    expect(() => loadConfig({ env: { NODE_ENV: 'production' }, cwd: emptyDir() })).toThrow('SESSION_SECRET is required in production');
  });

  it('reads .env, then ENV_FILE, then the process environment, later winning', () => {
    const cwd = emptyDir();
    const secrets = path.join(cwd, '..', `${path.basename(cwd)}-secrets.env`);
    writeFileSync(path.join(cwd, '.env'), `PORT=6001\nLOG_LEVEL=debug\nHOST=127.0.0.1\nENV_FILE=${secrets}\n`);
    writeFileSync(secrets, 'PORT=6002\nLOG_LEVEL=warn\n');
    const config = loadConfig({ env: { PORT: '6003' }, cwd });
    expect(config.PORT).toBe(6003);
    expect(config.LOG_LEVEL).toBe('warn');
    expect(config.HOST).toBe('127.0.0.1');
  });

  it('reports an ENV_FILE that cannot be read', () => {
    expect(() => loadConfig({ env: { ENV_FILE: '../JayaAppSecrets/environment.env' }, cwd: emptyDir() })).toThrow(
      /^ENV_FILE: cannot read .*environment\.env \(ENOENT\)$/,
    );
  });

  it('treats an empty value as unset', () => {
    const config = loadConfig({ env: { DATABASE_URL: '', PORT: '' }, cwd: emptyDir() });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.PORT).toBe(5503);
  });

  it('parses TRUST_PROXY as a flag, a hop count or a list of proxies', () => {
    const cwd = emptyDir();
    expect(loadConfig({ env: { TRUST_PROXY: 'true' }, cwd }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ env: { TRUST_PROXY: '2' }, cwd }).TRUST_PROXY).toBe(2);
    expect(loadConfig({ env: { TRUST_PROXY: '10.0.0.0/8,127.0.0.1' }, cwd }).TRUST_PROXY).toBe('10.0.0.0/8,127.0.0.1');
    expect(loadConfig({ env: { TRUST_PROXY: 'loopback, fd00::/8' }, cwd }).TRUST_PROXY).toBe('loopback, fd00::/8');
  });

  it('refuses a TRUST_PROXY entry that is no address, CIDR or range name, in one line', () => {
    const attempt = () => loadConfig({ env: { TRUST_PROXY: '10.0.0.1, proxy.internal' }, cwd: emptyDir() });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^Invalid configuration: TRUST_PROXY[^\n]*proxy\.internal[^\n]*$/);
    expect(() => loadConfig({ env: { TRUST_PROXY: '10.0.0.0/33' }, cwd: emptyDir() })).toThrow(ConfigError);
  });

  it('points APP_URL at HOST and PORT unless it is set', () => {
    const cwd = emptyDir();
    expect(loadConfig({ env: {}, cwd }).APP_URL).toBe('http://localhost:5503');
    expect(loadConfig({ env: { PORT: '8080' }, cwd }).APP_URL).toBe('http://localhost:8080');
    expect(loadConfig({ env: { HOST: '127.0.0.1', PORT: '7000' }, cwd }).APP_URL).toBe('http://127.0.0.1:7000');
    expect(loadConfig({ env: { HOST: '::1', PORT: '7000' }, cwd }).APP_URL).toBe('http://[::1]:7000');
    expect(loadConfig({ env: { HOST: '::', PORT: '7000' }, cwd }).APP_URL).toBe('http://localhost:7000');
    expect(loadConfig({ env: { PORT: '8080', APP_URL: 'https://api.parley.example' }, cwd }).APP_URL).toBe('https://api.parley.example');
  });

  it('refuses TRUST_PROXY=true in production, with one line saying what to set instead', () => {
    const production = { NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(40), METRICS_TOKEN: 'm'.repeat(24), OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32) };
    const attempt = () => loadConfig({ env: { ...production, TRUST_PROXY: 'true' }, cwd: emptyDir() });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^Invalid configuration: TRUST_PROXY=true is refused in production .*number of proxies in front[^\n]*$/);
    expect(loadConfig({ env: { ...production, TRUST_PROXY: '1' }, cwd: emptyDir() }).TRUST_PROXY).toBe(1);
    expect(loadConfig({ env: { ...production, TRUST_PROXY: '10.0.0.0/8' }, cwd: emptyDir() }).TRUST_PROXY).toBe('10.0.0.0/8');
  });

  it('refuses to start in production without OLLAMA_KEY_ENCRYPTION_KEY, and refuses a key that is not 32 bytes', () => {
    const production = { NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(40), METRICS_TOKEN: 'm'.repeat(24) };
    expect(() => loadConfig({ env: production, cwd: emptyDir() })).toThrow(/^Invalid configuration: OLLAMA_KEY_ENCRYPTION_KEY is required in production/);
    expect(() => loadConfig({ env: { ...production, OLLAMA_KEY_ENCRYPTION_KEY: 'c2hvcnQ=' }, cwd: emptyDir() })).toThrow(/OLLAMA_KEY_ENCRYPTION_KEY/);
    const hex = loadConfig({ env: { ...production, OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32) }, cwd: emptyDir() });
    const base64 = loadConfig({ env: { ...production, OLLAMA_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 0x5e).toString('base64') }, cwd: emptyDir() });
    expect(hex.OLLAMA_KEY_ENCRYPTION_KEY?.equals(base64.OLLAMA_KEY_ENCRYPTION_KEY!)).toBe(true);
  });

  it('refuses to start in production without METRICS_TOKEN, so /metrics is never public there', () => {
    const production = { NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(40), OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32) };
    expect(() => loadConfig({ env: production, cwd: emptyDir() })).toThrow(/^Invalid configuration: METRICS_TOKEN is required in production/);
    expect(loadConfig({ env: { ...production, METRICS_TOKEN: 'm'.repeat(24) }, cwd: emptyDir() }).METRICS_TOKEN).toBe('m'.repeat(24));
  });

  it("takes GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET together, and defaults GitHub's URLs to github.com", () => {
    expect(() => loadConfig({ env: { GITHUB_CLIENT_ID: 'Iv1.abc' }, cwd: emptyDir() })).toThrow(/GITHUB_CLIENT_SECRET is required with GITHUB_CLIENT_ID/);
    expect(() => loadConfig({ env: { GITHUB_CLIENT_SECRET: 'shh' }, cwd: emptyDir() })).toThrow(/GITHUB_CLIENT_ID is required with GITHUB_CLIENT_SECRET/);
    const config = loadConfig({ env: { GITHUB_CLIENT_ID: 'Iv1.abc', GITHUB_CLIENT_SECRET: 'shh' }, cwd: emptyDir() });
    expect(config).toMatchObject({ GITHUB_OAUTH_URL: 'https://github.com', GITHUB_API_URL: 'https://api.github.com', COOKIE_SESSION_TTL: 7 * 86_400_000 });
  });

  it('splits FRONTEND_URL into origins and parses booleans', () => {
    const config = loadConfig({ env: { FRONTEND_URL: 'https://a.example, https://b.example', SECURITY_HEADERS_ENABLED: 'off' }, cwd: emptyDir() });
    expect(config.FRONTEND_URL).toEqual(['https://a.example', 'https://b.example']);
    expect(config.SECURITY_HEADERS_ENABLED).toBe(false);
    expect(() => loadConfig({ env: { SECURITY_HEADERS_ENABLED: 'perhaps' }, cwd: emptyDir() })).toThrow(/SECURITY_HEADERS_ENABLED/);
  });
});

describe('parseDurationMs', () => {
  it.each([
    ['15m', 900_000],
    ['30d', 2_592_000_000],
    ['60s', 60_000],
    ['250ms', 250],
    ['1000', 1000],
  ])('reads %s', (text, ms) => expect(parseDurationMs(text)).toBe(ms));

  it.each(['', 'soon', '5 weeks', '-1s'])('rejects %j', (text) => expect(parseDurationMs(text)).toBeNull());
});
