import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvExample } from '../src/config/env-example.js';
import { ENV_GROUPS, envSchema } from '../src/config/env.js';
import { migrations } from '../migrations/index.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { repoRoot } from './helpers/spawn.js';

describe('OpenAPI document', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it('is valid OpenAPI 3.1 and documents the routes from their zod schemas', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const document = res.json();
    const result = await new Validator().validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/health', '/ready', '/metrics']));
    expect(document.paths['/ready'].get.responses['503']).toBeDefined();
  });

  it('serves the interactive docs at /docs', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('swagger-ui');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
  });
});

describe('.env.example', () => {
  it('is what the schema generates (run `npm run env:example` after changing src/config/env.ts)', () => {
    expect(readFileSync(path.join(repoRoot, '.env.example'), 'utf8')).toBe(renderEnvExample());
  });

  it('groups every variable of the schema exactly once', () => {
    const grouped = ENV_GROUPS.flatMap((group) => group.keys);
    expect([...grouped].sort()).toEqual(Object.keys(envSchema.shape).sort());
    expect(new Set(grouped).size).toBe(grouped.length);
  });
});

describe('migrations', () => {
  it('registers every file of migrations/ in migrations/index.ts, oldest first', () => {
    const files = readdirSync(path.join(repoRoot, 'migrations'))
      .filter((file) => /^\d+-\w+\.ts$/.test(file))
      .sort();
    expect(migrations.map((migration) => migration.name)).toEqual(files.map((file) => file.replace(/^(\d+)-(\w+)\.ts$/, '$2$1')));
  });
});
