import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, register } from './helpers/auth.js';

// A pool of 2: a request that takes a second connection while its transaction holds one
// deadlocks the pool as soon as two such requests run together.
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ env: { DATABASE_POOL_SIZE: '2' } });
});
afterAll(() => t.close());

const refresh = (refreshToken: string) => t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } });

describe('the database pool under concurrent refreshes', () => {
  it('answers 50 concurrent refreshes (one token and many) without a 500, and another user meanwhile', async () => {
    const shared = await register(t.app);
    const others = [];
    for (let i = 0; i < 25; i += 1) others.push(await register(t.app));
    const bystander = await register(t.app);

    const refreshes = Promise.all([...Array.from({ length: 25 }, () => refresh(shared.refreshToken)), ...others.map((pair) => refresh(pair.refreshToken))]);
    const profile = injectAs(t.app, bystander, { method: 'GET', url: '/users/me' });
    const [results, me] = await Promise.all([refreshes, profile]);

    expect(me.statusCode).toBe(200);
    const statuses = results.map((res) => res.statusCode);
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
    expect(statuses.every((status) => status === 200)).toBe(true);
    // the 25 users each got their own new pair; the shared token was rotated once
    expect(new Set(results.slice(0, 25).map((res) => res.json().refreshToken)).size).toBe(1);
    expect(new Set(results.slice(25).map((res) => res.json().refreshToken)).size).toBe(25);
  });
});
