import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { client, listen, readyUser, type Client } from './helpers/realtime.js';

let t: TestApp;
let url: string;
beforeAll(async () => {
  // a departed searcher's search outlives its socket this long (the app in the background)
  t = await buildTestApp({ env: { CALL_RECONNECT_GRACE: '60s', MATCH_BACKGROUND_GRACE: '250ms' } });
  url = await listen(t.app);
});
afterAll(() => t.close());

/** A small deterministic generator, so a failing interleaving can be replayed. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('matchmaking under concurrency', () => {
  // several seeds: one of them once found a user matched twice (now excluded by the pairing script)
  it.each([20261122, 7, 424242])(
    'keeps its invariants through hundreds of interleaved find_partner, cancel_search and disconnects (seed %i)',
    async (seed) => {
      const next = random(seed);
      const levels = ['all', 'beginner'] as const;
      const users = await Promise.all(Array.from({ length: 60 }, () => readyUser(t.app)));
      const clients = new Map<string, Client>();
      for (const user of users) clients.set(user.user.id, await client(url, user.accessToken));
      const departed = new Set<string>();

      await Promise.all(
        users.map(async (user) => {
          const c = clients.get(user.user.id)!;
          for (let step = 0; step < 6; step += 1) {
            const roll = next();
            if (roll < 0.55) await c.socket.timeout(10_000).emitWithAck('find_partner', { level: levels[Math.floor(next() * levels.length)] });
            else if (roll < 0.9) await c.socket.timeout(10_000).emitWithAck('cancel_search');
            else {
              departed.add(user.user.id);
              c.close();
              return;
            }
          }
        }),
      );

      const redis = t.container.redis.client;
      // the server has processed every disconnect, and the background grace is over: no departed user is still searching
      await expect
        .poll(async () => (await Promise.all([...departed].map((id) => redis.exists(`match:searching:${id}`)))).reduce((a, b) => a + b, 0), { timeout: 5_000 })
        .toBe(0);

      const ids = users.map((user) => user.user.id);
      const calls = await t.container.db.query<Array<{ room_id: string; user_a_id: string; user_b_id: string; ended_at: Date | null }>>(
        'SELECT room_id, user_a_id, user_b_id, ended_at FROM call_sessions WHERE user_a_id = ANY($1) OR user_b_id = ANY($1)',
        [ids],
      );
      expect(calls.length).toBeGreaterThan(5);
      // A cancel_search after match_found leaves the match (its call closes) and puts the
      // partner back in the queue, so a user may have had several calls, but one open at most.
      const open = calls.filter((call) => !call.ended_at);
      const inCalls = open.flatMap((call) => [call.user_a_id, call.user_b_id]);
      // nobody with themself, nobody in two calls at once
      expect(calls.every((call) => call.user_a_id !== call.user_b_id)).toBe(true);
      expect(new Set(inCalls).size, JSON.stringify(open)).toBe(inCalls.length);
      // both sides heard of each match, unless they had left
      const heard = (id: string, event: string) =>
        clients
          .get(id)!
          .received.filter((entry) => entry.event === event)
          .map((entry) => entry.payload);
      for (const call of calls) {
        for (const id of [call.user_a_id, call.user_b_id]) {
          if (departed.has(id)) continue;
          expect(heard(id, 'match_found')).toContainEqual(expect.objectContaining({ roomId: call.room_id }));
        }
      }
      // every match left before the call was heard of by the partner who stayed
      const cancelledFor = (id: string) => calls.filter((call) => call.ended_at && (call.user_a_id === id || call.user_b_id === id)).length;
      for (const id of ids) if (!departed.has(id)) expect(heard(id, 'partner_cancelled').length).toBeLessThanOrEqual(cancelledFor(id));
      expect(calls.filter((call) => call.ended_at).length).toBeGreaterThan(0);
      // nobody waits while a compatible partner waits in the same queue
      for (const level of levels) {
        const waiting = [];
        for (const id of ids) if ((await redis.exists(`match:searching:${id}`)) && (await redis.hget('match:search-level', id)) === level) waiting.push(id);
        expect(waiting.length, `still searching in ${level}`).toBeLessThanOrEqual(1);
        expect(waiting.filter((id) => departed.has(id))).toEqual([]);
        expect(waiting.filter((id) => inCalls.includes(id))).toEqual([]);
      }
      for (const c of clients.values()) c.close();
      // gone from the queue (once the background grace is over) before the next run starts
      await expect
        .poll(async () => (await Promise.all(ids.map((id) => redis.exists(`match:searching:${id}`)))).reduce((a, b) => a + b, 0), { timeout: 5_000 })
        .toBe(0);
    },
    60_000,
  );
});
