import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { bearer, login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { fuzzCases, operations, validRequest, type OpenApiDocument } from './helpers/openapi-driver.js';

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

describe('every operation of /openapi.json under hostile input', () => {
  it('never answers 5xx, as anonymous, a signed-in user or an admin', async () => {
    const failures: string[] = [];
    let sent = 0;
    for (const operation of operations(document)) {
      const cases = [{ name: 'the documented request', request: validRequest(document, operation) }, ...fuzzCases(document, operation)];
      for (const [role, auth] of await callers()) {
        for (const { name, request } of cases) {
          const res = await t.app.inject({ ...request, headers: { ...request.headers, ...auth } });
          sent += 1;
          if (res.statusCode >= 500) failures.push(`${operation.method} ${operation.path} as ${role}, ${name}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(1000);
  }, 120_000);
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
