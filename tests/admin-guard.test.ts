import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, register } from './helpers/auth.js';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(() => t.close());

describe('admin routes', () => {
  it('refuse anonymous callers (401) and students (403), every one of them', async () => {
    // enumerated from the OpenAPI document, so a new admin route cannot be forgotten here
    const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const routes = Object.entries(document.paths as Record<string, Record<string, unknown>>)
      .filter(([url]) => url.startsWith('/admin'))
      .flatMap(([url, methods]) =>
        Object.keys(methods).map((method) => ({ method: method.toUpperCase() as 'GET', url: url.replace(/\{[^}]+\}/g, 'PARLEY-AAAA-AAAA') })),
      );
    expect(routes.length).toBeGreaterThanOrEqual(4);
    const student = await register(t.app);
    for (const route of routes) {
      const anonymous = await t.app.inject({ ...route, payload: route.method === 'GET' ? undefined : {} });
      expect(anonymous.statusCode, `${route.method} ${route.url} anonymous`).toBe(401);
      const asStudent = await injectAs(t.app, student, { ...route, payload: route.method === 'GET' ? undefined : {} });
      expect(asStudent.statusCode, `${route.method} ${route.url} as a student`).toBe(403);
    }
  });
});
