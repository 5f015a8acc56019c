import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { buildTestApp, separateDatabaseUrl, type TestApp } from './helpers/app.js';
import { manualClock } from './helpers/clock.js';
import { eventually } from './helpers/jobs.js';
import { client, listen, readyUser, type Client, type Instance, type MatchFound } from './helpers/realtime.js';

// After MATCH_AI_FALLBACK_SECONDS of searching (on the injected clock), a search hears
// `searching` again with aiPartnerAvailable: true, once, from a job that sweeps every instance's searches.

const FALLBACK_MS = 2_000;
const OFFER_JOB = 'match.offer-ai-partner';
const clock = manualClock();
const offering = {
  OLLAMA_BASE_URL: 'http://127.0.0.1:11434',
  MATCH_AI_FALLBACK_SECONDS: String(FALLBACK_MS / 1000),
  // one Socket.io cluster (with a real Redis) for every instance of the file: an offer reaches a searcher on any of them
  REALTIME_CHANNEL_PREFIX: `parley-ai-fallback-${randomBytes(4).toString('hex')}`,
  // a closed socket ends its search at once
  MATCH_BACKGROUND_GRACE: '0',
};

interface Searching {
  estimated_wait_seconds: number;
  aiPartnerAvailable: boolean;
}

let on: Instance;
const open: Client[] = [];
beforeAll(async () => {
  const t = await buildTestApp({ clock, env: offering });
  on = { t, url: await listen(t.app) };
});
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
afterAll(() => on.t.close());

async function connected(instance: Instance) {
  const user = await readyUser(instance.t.app);
  const c = await client(instance.url, user.accessToken);
  open.push(c);
  return { user, c };
}

/** find_partner, then the first `searching` (its offer not made yet). */
async function search(c: Client, level: string): Promise<Searching> {
  expect(await c.socket.timeout(5_000).emitWithAck('find_partner', { level })).toEqual({ status: 'queued' });
  const first = await c.next<Searching>('searching');
  expect(first).toEqual({ estimated_wait_seconds: expect.any(Number) as number, aiPartnerAvailable: false });
  return first;
}

/** Until `count` sweeps of `t`'s offer job have completed since now: the last of them began after anything done before. */
async function sweeps(t: TestApp, count = 2): Promise<void> {
  const completed = async () => (await t.container.jobs.queue.stats()).find((entry) => entry.queue === OFFER_JOB)!.counts.completed;
  const before = await completed();
  await eventually(completed, (done) => done >= before + count);
}

/** The events a client received and no test took yet. */
const untaken = (c: Client) => c.received.map((entry) => entry.event);

describe('a search that waits', () => {
  it('hears searching with aiPartnerAvailable false, then once true when MATCH_AI_FALLBACK_SECONDS have passed', async () => {
    const { c } = await connected(on);
    const first = await search(c, 'beginner');

    clock.advance(FALLBACK_MS - 1);
    await sweeps(on.t);
    expect(untaken(c)).toEqual([]);

    clock.advance(1);
    expect(await c.next<Searching>('searching')).toEqual({ estimated_wait_seconds: first.estimated_wait_seconds, aiPartnerAvailable: true });
    clock.advance(FALLBACK_MS);
    await sweeps(on.t);
    expect(untaken(c)).toEqual([]);
    // the offer leaves the search as it was: it still runs until cancelled
    expect(await c.socket.timeout(5_000).emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });

  it('is never offered the AI partner once matched before the fallback time', async () => {
    const [a, b] = [await connected(on), await connected(on)];
    await search(a.c, 'intermediate');
    clock.advance(FALLBACK_MS - 1);
    expect(await b.c.socket.timeout(5_000).emitWithAck('find_partner', { level: 'intermediate' })).toEqual({ status: 'matched' });
    const [found] = await Promise.all([a.c.next<MatchFound>('match_found'), b.c.next<MatchFound>('match_found')]);

    clock.advance(FALLBACK_MS * 5);
    await sweeps(on.t);
    expect({ a: untaken(a.c), b: untaken(b.c) }).toEqual({ a: [], b: [] });

    a.c.socket.emit('join_room', { roomId: found.roomId });
    await a.c.next('peer_joined');
    a.c.socket.emit('end_call', { roomId: found.roomId });
    expect(await b.c.next('peer_left')).toEqual({ reason: 'ended' });
  });

  it('is never offered the AI partner once cancelled; a new search waits its own fallback time', async () => {
    const { c } = await connected(on);
    await search(c, 'advanced');
    clock.advance(FALLBACK_MS / 2);
    expect(await c.socket.timeout(5_000).emitWithAck('cancel_search')).toEqual({ cancelled: true });
    clock.advance(FALLBACK_MS);
    await sweeps(on.t);
    expect(untaken(c)).toEqual([]);

    await search(c, 'advanced');
    clock.advance(FALLBACK_MS / 2);
    expect(await c.socket.timeout(5_000).emitWithAck('cancel_search')).toEqual({ cancelled: true });
    // the first search would have been due by now, the second is cancelled: neither is told
    await search(c, 'advanced');
    clock.advance(FALLBACK_MS - 1);
    await sweeps(on.t);
    expect(untaken(c)).toEqual([]);
    clock.advance(1);
    expect(await c.next<Searching>('searching')).toMatchObject({ aiPartnerAvailable: true });
    expect(await c.socket.timeout(5_000).emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });
});

describe('an instance that does not offer the AI partner', () => {
  // No workers of their own: the offering instance's job sweeps for every instance of the cluster.
  let off: Instance;
  let noAi: Instance;
  beforeAll(async () => {
    const [offT, noAiT] = [
      await buildTestApp({ clock, env: { ...offering, WORKERS: 'off', MATCH_AI_FALLBACK_SECONDS: 'off' } }),
      await buildTestApp({ clock, env: { ...offering, WORKERS: 'off', OLLAMA_BASE_URL: undefined } }),
    ];
    off = { t: offT, url: await listen(offT.app) };
    noAi = { t: noAiT, url: await listen(noAiT.app) };
  });
  afterAll(async () => {
    await off.t.close();
    await noAi.t.close();
  });

  it.each([
    ['with MATCH_AI_FALLBACK_SECONDS off', () => off],
    ['without OLLAMA_BASE_URL', () => noAi],
  ])('%s never tells its searches the AI partner is available', async (_case, instance) => {
    const { user, c } = await connected(instance());
    await search(c, 'all');
    // Nothing is due for the search in the schedule every instance sweeps; with a real Redis the
    // sweeps below would also relay a wrong offer to this instance's socket.
    expect(await on.t.container.redis.client.zscore('match:ai-partner-due', user.user.id)).toBeNull();
    clock.advance(FALLBACK_MS * 30);
    await sweeps(on.t);
    expect(untaken(c)).toEqual([]);
    expect(await c.socket.timeout(5_000).emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });
});

describe('MATCH_AI_FALLBACK_SECONDS', () => {
  const fallbackMs = (value?: string) =>
    loadConfig({ env: { MATCH_AI_FALLBACK_SECONDS: value }, cwd: mkdtempSync(path.join(os.tmpdir(), 'parley-env-')) }).MATCH_AI_FALLBACK_SECONDS;

  it('reads seconds, a duration, or 0 and off for never; 30 s unset', () => {
    expect([undefined, '45', '45s', '2m', '0', 'off'].map(fallbackMs)).toEqual([30_000, 45_000, 45_000, 120_000, 0, 0]);
  });

  it('refuses anything else, naming the setting', () => {
    for (const value of ['soon', '-5', '1.5', 'on']) expect(() => fallbackMs(value), value).toThrow(/MATCH_AI_FALLBACK_SECONDS expected seconds such as 30/);
  });
});

// Two instances sweeping one Redis: a real one (TEST_REDIS_URL, set in CI).
describe.runIf(Boolean(inject('redisUrl')))('two offering instances', () => {
  let peer: Instance;
  beforeAll(async () => {
    // its own database, so its job queue (and its sweeps) are its own
    const t = await buildTestApp({ clock, env: { ...offering, DATABASE_URL: await separateDatabaseUrl() } });
    peer = { t, url: await listen(t.app) };
  });
  afterAll(() => peer.t.close());

  it('tell each search once, on whichever instance its socket is, whichever instance sweeps', async () => {
    const here = await connected(on);
    const there = await connected(peer);
    await search(here.c, 'beginner');
    await search(there.c, 'advanced');
    clock.advance(FALLBACK_MS);
    const offers = await Promise.all([here.c.next<Searching>('searching'), there.c.next<Searching>('searching')]);
    expect(offers.map((offer) => offer.aiPartnerAvailable)).toEqual([true, true]);
    await Promise.all([sweeps(on.t), sweeps(peer.t)]);
    expect({ here: untaken(here.c), there: untaken(there.c) }).toEqual({ here: [], there: [] });
    for (const { c } of [here, there]) expect(await c.socket.timeout(5_000).emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });
});
