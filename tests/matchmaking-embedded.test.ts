import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { readyUser } from './helpers/realtime.js';

// The in-process Redis emulation (ioredis-mock, nothing configured) runs the same Lua scripts as Redis:
// a table a script builds by insertion must still come back as a list.
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ env: { REDIS_URL: undefined, WORKERS: 'off' } });
});
afterAll(() => t.close());

it('retires an instance with several searchers on the embedded Redis, naming each of them', async () => {
  expect(t.container.redis.embedded).toBe(true);
  const matchmaking = t.container.services.matchmaking;
  const levels = ['beginner', 'intermediate', 'advanced'] as const;
  const users = [];
  for (const level of levels) {
    const user = await readyUser(t.app, level);
    expect(await matchmaking.findPartner(user.user.id, { level })).toMatchObject({ status: 'queued' });
    users.push(user);
  }
  expect((await matchmaking.retire()).sort()).toEqual(users.map((user) => user.user.id).sort());
});
