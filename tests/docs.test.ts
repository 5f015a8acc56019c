import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderEnvExample } from '../src/config/env-example.js';
import { ENV_GROUPS, envSchema } from '../src/config/env.js';
import { migrations } from '../migrations/index.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, uniqueEmail } from './helpers/auth.js';
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

  it('documents what the routes take and serve: multipart avatars, named storage paths, text metrics, dated activity', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const avatar = document.paths['/users/me/avatar'].post;
    expect(avatar.requestBody.content['multipart/form-data'].schema).toMatchObject({
      required: ['file'],
      properties: { file: { type: 'string', format: 'binary' } },
    });
    expect(document.paths['/storage/{*}']).toBeUndefined();
    const storage = document.paths['/storage/{path}'].get;
    expect(storage.parameters.filter((p: { in: string }) => p.in === 'path').map((p: { name: string }) => p.name)).toEqual(['path']);
    expect(Object.keys(document.paths['/metrics'].get.responses['200'].content)).toEqual(['text/plain']);
    const activity = document.paths['/admin/activity'].get.parameters;
    for (const name of ['from', 'to']) {
      const schema = activity.find((p: { name: string }) => p.name === name).schema;
      expect(JSON.stringify(schema)).toContain('date-time');
    }
  });

  it('declares the errors every route can answer: 429 and 500 everywhere, 401 where auth applies, 413 and 415 where a body is taken', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const me = document.paths['/auth/me'].get.responses;
    expect(Object.keys(me)).toEqual(expect.arrayContaining(['200', '400', '401', '429', '500', '503']));
    expect(me['429'].content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorResponse');
    expect(Object.keys(document.paths['/auth/login'].post.responses)).toEqual(expect.arrayContaining(['413', '415', '429']));
    expect(Object.keys(document.paths['/admin/stats'].get.responses)).toEqual(expect.arrayContaining(['401', '403']));
    expect(Object.keys(document.paths['/health'].get.responses)).not.toContain('401');
  });

  it('declares 403 on every operation that takes a bearer token: a banned account gets account_banned on any of them', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    type Operation = { security?: unknown[]; responses: Record<string, unknown> };
    const signedIn = Object.entries(document.paths as Record<string, Record<string, Operation>>).flatMap(([url, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.security?.length)
        .map(([method, operation]) => ({ operation: `${method.toUpperCase()} ${url}`, declares403: '403' in operation.responses })),
    );
    expect(signedIn.map(({ operation }) => operation)).toContain('GET /users/me');
    expect(signedIn.filter(({ declares403 }) => !declares403)).toEqual([]);
  });

  it('answers a bad date in the activity filter with a message that names the expected format', async () => {
    const email = uniqueEmail('admin');
    await t.container.services.auth.ensureAdmin(email, PASSWORD);
    const admin = await login(t.app, email);
    const res = await injectAs(t.app, admin, { method: 'GET', url: '/admin/activity?from=yesterday' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.fields[0]).toMatchObject({ in: 'querystring', path: 'from' });
    expect(res.body).not.toContain('received Date');
    const ok = await injectAs(t.app, admin, { method: 'GET', url: '/admin/activity?from=2020-01-01&to=2030-01-01T00:00:00Z' });
    expect(ok.statusCode).toBe(200);
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

describe('SPECS.md', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { WORKERS: 'off' } });
  });
  afterAll(() => t.close());

  it('lists every table the migrations build under "Tables"', async () => {
    const specs = readFileSync(path.join(repoRoot, 'SPECS.md'), 'utf8');
    const section = specs.slice(specs.indexOf('\n## Tables\n'), specs.indexOf('\n## ', specs.indexOf('\n## Tables\n') + 1));
    const listed = new Set([...section.matchAll(/^\|([^|]+)\|/gm)].flatMap(([, names]) => [...names!.matchAll(/`(\w+)`/g)].map(([, name]) => name)));
    const tables: Array<{ name: string }> = await t.container.db.query(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'migrations' ORDER BY 1`,
    );
    expect(tables.length).toBeGreaterThan(20);
    expect(tables.map(({ name }) => name).filter((name) => !listed.has(name))).toEqual([]);
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
