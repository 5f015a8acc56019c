import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import type { InjectOptions } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { bearer, login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { multipartFile } from './helpers/multipart.js';
import { fuzzCases, operations, validRequest, type OpenApiDocument, type Operation } from './helpers/openapi-driver.js';

let t: TestApp;
let document: OpenApiDocument;

beforeAll(async () => {
  t = await buildTestApp({ env: { RATE_LIMIT_REQUESTS: '1000000', BODY_LIMIT_BYTES: String(2 * 1024 * 1024) } });
  document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
});
afterAll(() => t.close());

/** Fresh callers for each operation: a case may log them out, delete or ban them. */
async function callers(): Promise<Array<[string, Record<string, string>]>> {
  const user = await register(t.app);
  const adminEmail = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(adminEmail, PASSWORD);
  const admin = await login(t.app, adminEmail);
  return [
    ['anonymous', {}],
    ['user', bearer(user.accessToken)],
    ['admin', bearer(admin.accessToken)],
  ];
}

interface Outcome {
  label: string;
  operation: Operation;
  status: number;
  contentType: string;
  body: string;
}

/**
 * Every operation, driven once as anonymous, a signed-in user and an admin, with the request
 * its schemas describe and the bounded hostile cases of the driver; both tests below judge
 * the same outcomes.
 */
async function walk(): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const operation of operations(document)) {
    const cases = [{ name: 'the documented request', request: validRequest(document, operation) }, ...fuzzCases(document, operation)];
    for (const [role, auth] of await callers()) {
      for (const { name, request } of cases) {
        const res = await t.app.inject({ ...request, headers: { ...request.headers, ...auth } });
        outcomes.push({
          label: `${operation.method} ${operation.path} as ${role}, ${name}`,
          operation,
          status: res.statusCode,
          contentType: String(res.headers['content-type'] ?? ''),
          body: res.body,
        });
      }
    }
  }
  return outcomes;
}

/** The documented operation a concrete request lands on. */
function operationFor(method: string, url: string): Operation {
  const path = url.split('?')[0]!;
  const found = operations(document).find(
    (operation) => operation.method === method && new RegExp(`^${operation.path.replace(/\{path\}$/, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path),
  );
  if (!found) throw new Error(`no documented operation for ${method} ${path}`);
  return found;
}

/** The successful and conflicting paths the feature tests take, so 2xx bodies are judged too. */
async function happyPaths(): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const send = async (request: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) => {
    const res = await t.app.inject(request as InjectOptions);
    outcomes.push({
      label: `${request.method} ${request.url.split('?')[0]} (happy path)`,
      operation: operationFor(request.method, request.url),
      status: res.statusCode,
      contentType: String(res.headers['content-type'] ?? ''),
      body: res.body,
    });
    return res;
  };
  const a = await register(t.app);
  const b = await register(t.app);
  const adminEmail = uniqueEmail('admin');
  await t.container.services.auth.ensureAdmin(adminEmail, PASSWORD);
  const admin = bearer((await login(t.app, adminEmail)).accessToken);
  const me = bearer(a.accessToken);
  await send({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'd', platform: 'web' } });
  await send({ method: 'POST', url: '/auth/register', payload: { email: a.email, password: PASSWORD, deviceId: 'd', platform: 'web' } });
  await send({ method: 'POST', url: '/auth/login', payload: { email: a.email, password: PASSWORD, deviceId: 'd2', platform: 'web' } });
  await send({ method: 'POST', url: '/auth/login', payload: { email: a.email, password: 'wrong password!', deviceId: 'd2', platform: 'web' } });
  await send({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: b.refreshToken } });
  for (const url of ['/auth/me', '/auth/sessions', '/users/me', '/users/me/activity', '/sessions', '/reports/mine', `/users/${b.user.id}/public`]) {
    await send({ method: 'GET', url, headers: me });
  }
  await send({ method: 'PATCH', url: '/users/me', headers: me, payload: { version: 1, username: `u_${a.user.id.slice(0, 8)}`, englishLevel: 'intermediate' } });
  await send({ method: 'PATCH', url: '/users/me', headers: me, payload: { version: 1, bio: 'stale' } });
  await send({ method: 'PATCH', url: '/users/me', headers: me, payload: { bio: 'no version' } });
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .png()
    .toBuffer();
  const { payload, headers } = multipartFile(png, 'a.png', 'image/png');
  const uploaded = await send({ method: 'POST', url: '/users/me/avatar', headers: { ...me, ...headers }, payload });
  const avatarUrl = new URL(uploaded.json<{ profile: { avatarUrl: string } }>().profile.avatarUrl);
  await send({ method: 'GET', url: avatarUrl.pathname + avatarUrl.search });
  await send({ method: 'GET', url: `${avatarUrl.pathname}?expires=1&signature=forged` });
  await send({ method: 'DELETE', url: '/users/me/avatar', headers: me });
  await send({ method: 'POST', url: '/reports', headers: me, payload: { reportedId: b.user.id, reason: 'spam' } });
  await send({ method: 'POST', url: '/users/me/wallet', headers: me, payload: { address: `0x${'cd'.repeat(20)}` } });
  for (const url of [
    '/admin/stats',
    '/admin/users',
    `/admin/users/${a.user.id}`,
    '/admin/reports',
    '/admin/invite-keys',
    '/admin/activity?from=2020-01-01&to=2100-01-01T00:00:00Z',
  ]) {
    await send({ method: 'GET', url, headers: admin });
  }
  await send({ method: 'GET', url: '/admin/activity?from=not-a-date', headers: admin });
  const key = await send({ method: 'POST', url: '/admin/invite-keys', headers: admin, payload: {} });
  await send({ method: 'GET', url: `/admin/invite-keys/${key.json<{ key: string }>().key}`, headers: admin });
  await send({ method: 'PATCH', url: `/admin/users/${b.user.id}/ban`, headers: admin, payload: { reason: 'spam' } });
  await send({ method: 'PATCH', url: `/admin/users/${b.user.id}/unban`, headers: admin });
  await send({ method: 'GET', url: `/admin/users/${a.user.id}`, headers: me });
  for (const url of ['/health', '/ready', '/metrics', '/.well-known/jwks.json']) await send({ method: 'GET', url });
  await send({ method: 'POST', url: '/auth/logout', headers: me });
  await send({ method: 'GET', url: '/auth/me', headers: me });
  return outcomes;
}

let outcomes: Outcome[];

describe('every operation of /openapi.json under hostile input', () => {
  beforeAll(async () => {
    outcomes = [...(await happyPaths()), ...(await walk())];
  }, 120_000);

  it('never answers 5xx, as anonymous, a signed-in user or an admin', () => {
    expect(outcomes.length).toBeGreaterThan(1000);
    const failures = outcomes.filter((outcome) => outcome.status >= 500).map((outcome) => `${outcome.label}: ${outcome.status} ${outcome.body.slice(0, 200)}`);
    expect(failures).toEqual([]);
  });

  it('answers only statuses the document declares for the operation, with bodies its schemas accept', () => {
    const validator = new Ajv2020({ strict: false, allErrors: false });
    formats.default(validator);
    validator.addSchema({ $id: 'openapi', components: document.components ?? {} });
    const compiled = new Map<object, ValidateFunction>();
    const validate = (schema: object) => {
      let fn = compiled.get(schema);
      if (!fn) {
        fn = validator.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as object);
        compiled.set(schema, fn);
      }
      return fn;
    };
    const failures: string[] = [];
    for (const outcome of outcomes) {
      const declared = outcome.operation.responses[String(outcome.status)] ?? outcome.operation.responses.default;
      if (!declared) {
        failures.push(`${outcome.label}: ${outcome.status} is not declared (${outcome.body.slice(0, 120)})`);
        continue;
      }
      if (!declared.content) {
        if (outcome.body !== '') failures.push(`${outcome.label}: ${outcome.status} declares no body, got ${outcome.body.slice(0, 120)}`);
        continue;
      }
      const mediaType = outcome.contentType.split(';')[0]!.trim();
      const content = declared.content[mediaType] ?? declared.content[`${mediaType.split('/')[0]}/*`] ?? declared.content['*/*'];
      if (!content) {
        failures.push(`${outcome.label}: ${outcome.status} served ${mediaType}, declared ${Object.keys(declared.content).join(', ')}`);
        continue;
      }
      if (mediaType !== 'application/json' || !content.schema) continue;
      const check = validate(content.schema);
      if (!check(JSON.parse(outcome.body)))
        failures.push(`${outcome.label}: ${outcome.status} body ${validator.errorsText(check.errors)}: ${outcome.body.slice(0, 160)}`);
    }
    expect(outcomes.filter((outcome) => outcome.label.endsWith('(happy path)') && outcome.status < 300).length).toBeGreaterThan(25);
    expect([...new Set(failures.map((failure) => failure.replace(/ as (anonymous|user|admin),/, ',')))]).toEqual([]);
  });
});

describe('input PostgreSQL cannot hold', () => {
  it('refuses a NUL character anywhere in a body, query or path with 400 validation_failed', async () => {
    const user = await register(t.app);
    const adminEmail = uniqueEmail('admin');
    await t.container.services.auth.ensureAdmin(adminEmail, PASSWORD);
    const admin = await login(t.app, adminEmail);
    const responses = [
      await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: uniqueEmail(), password: PASSWORD, deviceId: 'phone\u00001', platform: 'ios' },
      }),
      await t.app.inject({ method: 'GET', url: '/admin/users?search=a%00b', headers: bearer(admin.accessToken) }),
      await t.app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}/ban`, headers: bearer(admin.accessToken), payload: { reason: 'x\u0000' } }),
      await t.app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(user.accessToken), payload: { version: 1, bio: 'hi\u0000' } }),
    ];
    for (const res of responses) {
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'validation_failed', details: { fields: [{ message: 'must not contain NUL characters' }] } });
    }
  });

  it('refuses a profile version beyond a PostgreSQL integer, in the body or If-Match, with 400', async () => {
    const user = await register(t.app);
    const inBody = await t.app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(user.accessToken), payload: { version: 2 ** 31, bio: 'hi' } });
    expect(inBody.statusCode).toBe(400);
    expect(inBody.json().error.code).toBe('validation_failed');
    const inHeader = await t.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: { ...bearer(user.accessToken), 'if-match': `"${2 ** 31}"` },
      payload: { bio: 'hi' },
    });
    expect(inHeader.statusCode).toBe(400);
    expect(inHeader.json().error.code).toBe('validation_failed');
  });
});
