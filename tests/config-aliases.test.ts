import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { closestName } from '../src/config/closest-name.js';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { buildTestApp, capturingLogger } from './helpers/app.js';

function folderWith(dotenv?: string): string {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-aliases-'));
  if (dotenv !== undefined) writeFileSync(path.join(cwd, '.env'), dotenv);
  return cwd;
}

/** Document 001's production .env, as its deployment notes give it (with a usable secret). */
const DOCUMENT_001_ENV = `# ORION JWT Configuration (MUST MATCH FRONTEND)
ORION_SHARED_JWT_SECRET=${'ab'.repeat(64)}
ORION_SHARED_JWT_ISS=https://www.sidekickportal.com
ORION_SHARED_JWT_AUD=orion-core

# Authorization
AUTHORIZED_USER_EMAIL=owner@example.com

# Server
PORT=3002

# Rate Limiting
RATE_LIMIT_WINDOW_MS=900000
RATE_LIMIT_MAX_REQUESTS=200

# Logging
LOG_LEVEL=info

# Features
ENABLE_JWT_AUTH=true
`;

describe("the documents' names for settings", () => {
  it("reads document 001's .env as written: its rate-limit names (milliseconds) and nothing unknown but ENABLE_JWT_AUTH", () => {
    const config = loadConfig({ env: {}, cwd: folderWith(DOCUMENT_001_ENV) });
    expect(config.RATE_LIMIT_WINDOW).toBe(900_000);
    expect(config.RATE_LIMIT_REQUESTS).toBe(200);
    expect(config.PORT).toBe(3002);
    expect(config.notices.aliases).toEqual([
      { alias: 'RATE_LIMIT_WINDOW_MS', setting: 'RATE_LIMIT_WINDOW' },
      { alias: 'RATE_LIMIT_MAX_REQUESTS', setting: 'RATE_LIMIT_REQUESTS' },
    ]);
    expect(config.notices.unknown).toEqual([{ name: 'ENABLE_JWT_AUTH', file: '.env', closest: undefined }]);
  });

  it("reads document 000's FRONTEND_URLS as FRONTEND_URL, a comma-separated list", () => {
    const config = loadConfig({ env: { FRONTEND_URLS: 'https://app.example, https://admin.example' }, cwd: folderWith() });
    expect(config.FRONTEND_URL).toEqual(['https://app.example', 'https://admin.example']);
  });

  it('accepts an alias and its setting side by side when they mean the same', () => {
    const config = loadConfig({
      env: { RATE_LIMIT_WINDOW: '15m', RATE_LIMIT_WINDOW_MS: '900000', FRONTEND_URL: 'https://app.example', FRONTEND_URLS: 'https://app.example' },
      cwd: folderWith(),
    });
    expect(config.RATE_LIMIT_WINDOW).toBe(900_000);
    expect(config.FRONTEND_URL).toEqual(['https://app.example']);
  });

  it('refuses an alias and its setting set differently in one place, in one line naming both', () => {
    const inFile = () => loadConfig({ env: {}, cwd: folderWith('RATE_LIMIT_WINDOW=60s\nRATE_LIMIT_WINDOW_MS=900000\n') });
    expect(inFile).toThrow(ConfigError);
    expect(inFile).toThrow(
      /^Invalid configuration: RATE_LIMIT_WINDOW_MS \("900000"\) and RATE_LIMIT_WINDOW \("60s"\) are both set in \.env and differ: [^\n]*keep one$/,
    );
    const inEnvironment = () => loadConfig({ env: { RATE_LIMIT_REQUESTS: '300', RATE_LIMIT_MAX_REQUESTS: '200' }, cwd: folderWith() });
    expect(inEnvironment).toThrow(/RATE_LIMIT_MAX_REQUESTS \("200"\) and RATE_LIMIT_REQUESTS \("300"\) are both set in the environment and differ/);
    expect(() => loadConfig({ env: { FRONTEND_URL: 'https://a.example', FRONTEND_URLS: 'https://b.example' }, cwd: folderWith() })).toThrow(
      /FRONTEND_URLS .* and FRONTEND_URL .* differ/,
    );
  });

  it('lets a later source override an earlier one under either name, as for any setting', () => {
    const cwd = folderWith('RATE_LIMIT_REQUESTS=300\nENV_FILE=secrets.env\n');
    writeFileSync(path.join(cwd, 'secrets.env'), 'RATE_LIMIT_MAX_REQUESTS=200\n');
    expect(loadConfig({ env: {}, cwd }).RATE_LIMIT_REQUESTS).toBe(200);
    expect(loadConfig({ env: { RATE_LIMIT_REQUESTS: '50' }, cwd }).RATE_LIMIT_REQUESTS).toBe(50);
  });

  it('wants RATE_LIMIT_WINDOW_MS in whole milliseconds', () => {
    expect(() => loadConfig({ env: { RATE_LIMIT_WINDOW_MS: '15m' }, cwd: folderWith() })).toThrow(
      /^Invalid configuration: RATE_LIMIT_WINDOW_MS expected a whole number \(document 001, in milliseconds\) \(got "15m"\)$/,
    );
    expect(() => loadConfig({ env: { RATE_LIMIT_MAX_REQUESTS: 'many' }, cwd: folderWith() })).toThrow(
      /^Invalid configuration: RATE_LIMIT_REQUESTS \(given as RATE_LIMIT_MAX_REQUESTS\) .*\(got "many"\)$/,
    );
  });
});

describe('unknown names in the settings files', () => {
  it('lists those of .env and ENV_FILE, with the nearest known name; never the process environment', () => {
    const cwd = folderWith('RATE_LIMT_WINDOW=5m\nREDIS_SOCKET=/run/redis.sock\nENV_FILE=extra.env\n');
    writeFileSync(path.join(cwd, 'extra.env'), 'stripe_secret_key=sk_test_x\nSOMETHING_ELSE_ENTIRELY=1\n');
    const config = loadConfig({ env: { PATH: '/usr/bin', REDIS_PORT: 'tcp://10.0.0.3:6379', GITHUB_SHA: 'abc' }, cwd });
    expect(config.notices.unknown).toEqual([
      { name: 'RATE_LIMT_WINDOW', file: '.env', closest: 'RATE_LIMIT_WINDOW' },
      { name: 'REDIS_SOCKET', file: '.env', closest: 'REDIS_SOCKET_PATH' },
      { name: 'stripe_secret_key', file: 'extra.env', closest: 'STRIPE_SECRET_KEY' },
      { name: 'SOMETHING_ELSE_ENTIRELY', file: 'extra.env', closest: undefined },
    ]);
    // an unknown name is ignored, not read: the setting it resembles keeps its default
    expect(config.RATE_LIMIT_WINDOW).toBe(60_000);
  });

  it('names nothing far off as the nearest', () => {
    expect(closestName('JWT_ISSUR', ['JWT_ISSUER', 'JWT_AUDIENCE'])).toBe('JWT_ISSUER');
    expect(closestName('ENABLE_JWT_AUTH', ['JWT_ISSUER', 'JWT_AUDIENCE', 'AUTH_LOGIN_LIMIT'])).toBeUndefined();
  });
});

describe('the start-up log', () => {
  it('says which aliases were read and warns once about the unknown names, then the app runs on them', async () => {
    const folder = folderWith();
    const envFile = path.join(folder, 'environment.env');
    writeFileSync(envFile, 'RATE_LIMIT_MAX_REQUESTS=2\nRATE_LIMIT_WINDOW_MS=60000\nRATE_LIMT_WINDOW=5m\nENABLE_JWT_AUTH=true\n');
    const { logger, lines } = capturingLogger('info');
    const t = await buildTestApp({ env: { ENV_FILE: envFile }, logger, extend: (app) => app.get('/test/limited', async () => ({ ok: true })) });
    try {
      const aliases = lines.filter((line) => String(line.msg).startsWith("settings read under their documents' names"));
      expect(aliases).toHaveLength(1);
      expect(aliases[0]).toMatchObject({
        level: 30,
        msg: "settings read under their documents' names: RATE_LIMIT_WINDOW_MS as RATE_LIMIT_WINDOW, RATE_LIMIT_MAX_REQUESTS as RATE_LIMIT_REQUESTS",
      });
      const unknown = lines.filter((line) => String(line.msg).startsWith('settings Parley does not know'));
      expect(unknown).toHaveLength(1);
      expect(unknown[0]).toMatchObject({
        level: 40,
        msg: `settings Parley does not know were ignored: RATE_LIMT_WINDOW (${envFile}; did you mean RATE_LIMIT_WINDOW?), ENABLE_JWT_AUTH (${envFile}; no similar setting)`,
      });
      // RATE_LIMIT_MAX_REQUESTS=2 is the limit the app enforces
      const statuses = [];
      for (let i = 0; i < 3; i += 1) statuses.push((await t.app.inject({ method: 'GET', url: '/test/limited', remoteAddress: '198.51.100.40' })).statusCode);
      expect(statuses).toEqual([200, 200, 429]);
    } finally {
      await t.close();
    }
  });

  it('stops start-up when an alias and its setting disagree', async () => {
    const folder = folderWith();
    const envFile = path.join(folder, 'environment.env');
    writeFileSync(envFile, 'FRONTEND_URL=https://a.example\nFRONTEND_URLS=https://b.example\n');
    await expect(buildTestApp({ env: { ENV_FILE: envFile } })).rejects.toThrow(ConfigError);
  });
});
