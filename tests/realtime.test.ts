import { createHmac } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, separateDatabaseUrl, type TestApp } from './helpers/app.js';
import { injectAs, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import {
  client,
  expectOneCaller,
  joinInSameTick,
  listen,
  matchedPair,
  readyUser,
  refusal,
  type Client,
  type Instance,
  type MatchFound,
} from './helpers/realtime.js';
import { stays } from './helpers/wait.js';
import { eventually } from './helpers/jobs.js';

let t: TestApp;
let url: string;
let here: Instance;
const open: Client[] = [];
beforeAll(async () => {
  t = await buildTestApp({
    env: { TURN_HOST: 'turn.parley.test', TURN_PORT: '3478', TURN_SECRET: 'turn-secret-for-tests', CALL_RECONNECT_GRACE: '400ms', MATCH_SEARCH_TIMEOUT: '5m' },
  });
  url = await listen(t.app);
  here = { t, url };
});
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
afterAll(() => t.close());

async function connected(token: string): Promise<Client> {
  const c = await client(url, token);
  open.push(c);
  return c;
}

describe('socket handshake', () => {
  it('refuses a socket without a token, with a revoked session, or of a banned account', async () => {
    expect((await refusal(url, undefined)).code).toBe('unauthorized');
    expect((await refusal(url, 'not.a.token')).code).toBe('invalid_token');
    const revoked = await register(t.app);
    await injectAs(t.app, revoked, { method: 'POST', url: '/auth/logout' });
    expect((await refusal(url, revoked.accessToken)).code).toBe('session_revoked');
    const banned = await register(t.app);
    await t.container.db.query('UPDATE users SET is_banned = true WHERE id = $1', [banned.user.id]);
    expect((await refusal(url, banned.accessToken)).code).toBe('account_banned');
  });

  it('closes the sockets of a session that signs out', async () => {
    const account = await register(t.app);
    const c = await connected(account.accessToken);
    const closed = new Promise((resolve) => c.socket.once('disconnect', resolve));
    await injectAs(t.app, account, { method: 'POST', url: '/auth/logout' });
    expect(await closed).toBe('io server disconnect');
  });
});

describe('matchmaking', () => {
  it('asks for a complete profile first, naming what is missing', async () => {
    const account = await register(t.app);
    const c = await connected(account.accessToken);
    c.socket.emit('find_partner', {});
    expect(await c.next('error')).toEqual({
      code: 'profile_incomplete',
      message: 'Complete your profile first',
      details: { missing: ['username', 'englishLevel'] },
    });
  });

  it('queues the first seeker and matches the second, telling both with TURN credentials', async () => {
    const { a, b, ma, mb } = await matchedPair(here, { track: open });
    expect(ma.roomId).toBe(mb.roomId);
    expect(ma.partner).toMatchObject({ displayName: `u_${b.user.id.slice(0, 8)}`, level: 'intermediate' });
    expect(mb.partner.displayName).toBe(`u_${a.user.id.slice(0, 8)}`);
    const turn = ma.iceServers.find((server) => server.username)!;
    expect(ma.iceServers[0]!.urls).toEqual(['stun:turn.parley.test:3478']);
    expect(turn.urls).toEqual(['turn:turn.parley.test:3478?transport=udp', 'turn:turn.parley.test:3478?transport=tcp']);
    const [expiry, userId] = turn.username!.split(':');
    expect(userId).toBe(a.user.id);
    expect(Number(expiry) - Date.now() / 1000).toBeGreaterThan(3500);
    expect(turn.credential).toBe(createHmac('sha1', 'turn-secret-for-tests').update(turn.username!).digest('base64'));
    const [row] = await t.container.db.query('SELECT user_a_id, user_b_id, ended_at FROM call_sessions WHERE room_id = $1', [ma.roomId]);
    expect(row).toEqual({ user_a_id: a.user.id, user_b_id: b.user.id, ended_at: null });
  });

  it('reports the searching estimate under its documented name', async () => {
    const user = await readyUser(t.app, 'advanced');
    const c = await connected(user.accessToken);
    c.socket.emit('find_partner', { level: 'advanced' });
    const searching = await c.next<{ estimated_wait_seconds: number }>('searching');
    expect(searching.estimated_wait_seconds).toBeGreaterThan(0);
    expect(await c.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });

  it('keeps the search under document 002\'s key: match:searching:{userId} holds "1" for 5 minutes', async () => {
    const user = await readyUser(t.app, 'advanced');
    const c = await connected(user.accessToken);
    c.socket.emit('find_partner', { level: 'advanced' });
    await c.next('searching');
    const redis = t.container.redis.client;
    const key = `match:searching:${user.user.id}`;
    expect(await redis.get(key)).toBe('1');
    expect(await redis.pttl(key)).toBeGreaterThan(299_000);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(300_000);
    expect(await redis.hget('match:search-level', user.user.id)).toBe('advanced');
    expect(await c.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
    expect([await redis.exists(key), await redis.hexists('match:search-level', user.user.id)]).toEqual([0, 0]);
    expect(await redis.lrange('match:queue:advanced', 0, -1)).not.toContain(user.user.id);
  });

  it('refuses a second search and a search during a call', async () => {
    const user = await readyUser(t.app, 'beginner');
    const c = await connected(user.accessToken);
    c.socket.emit('find_partner', { level: 'beginner' });
    await c.next('searching');
    c.socket.emit('find_partner', { level: 'beginner' });
    expect(await c.next('error')).toMatchObject({ code: 'already_searching' });
    expect(await c.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });

    const { ca } = await matchedPair(here, { track: open });
    ca.socket.emit('find_partner', {});
    expect(await ca.next('error')).toMatchObject({ code: 'already_in_room' });
  });

  it('does not match a seeker who cancelled', async () => {
    const [a, b] = [await readyUser(t.app, 'beginner'), await readyUser(t.app, 'beginner')];
    const [ca, cb] = [await connected(a.accessToken), await connected(b.accessToken)];
    ca.socket.emit('find_partner', { level: 'beginner' });
    await ca.next('searching');
    expect(await ca.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
    cb.socket.emit('find_partner', { level: 'beginner' });
    await cb.next('searching');
    expect(await cb.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });

  it('keeps level queues apart', async () => {
    const [a, b, c] = [await readyUser(t.app), await readyUser(t.app), await readyUser(t.app)];
    const [ca, cb, cc] = [await connected(a.accessToken), await connected(b.accessToken), await connected(c.accessToken)];
    const redis = t.container.redis.client;
    expect(await ca.socket.emitWithAck('find_partner', { level: 'advanced' })).toEqual({ status: 'queued' });
    // a beginner search finds nobody though an advanced one is waiting: both wait, each in its own queue
    expect(await cb.socket.emitWithAck('find_partner', { level: 'beginner' })).toEqual({ status: 'queued' });
    expect([await redis.lrange('match:queue:advanced', 0, -1), await redis.lrange('match:queue:beginner', 0, -1)]).toEqual([[a.user.id], [b.user.id]]);

    // the next advanced search gets the advanced one waiting, and the beginner waits on
    expect(await cc.socket.emitWithAck('find_partner', { level: 'advanced' })).toEqual({ status: 'matched' });
    const [forA, forC] = await Promise.all([ca.next<MatchFound>('match_found'), cc.next<MatchFound>('match_found')]);
    expect(forC.roomId).toBe(forA.roomId);
    expect(forC.partner.displayName).toBe(`u_${a.user.id.slice(0, 8)}`);
    expect(await redis.lrange('match:queue:beginner', 0, -1)).toEqual([b.user.id]);
    expect(await cb.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
    expect(cb.received.map((entry) => entry.event)).toEqual(['searching']);
  });

  it('rejects an invalid payload', async () => {
    const user = await readyUser(t.app);
    const c = await connected(user.accessToken);
    c.socket.emit('find_partner', { level: 'expert', admin: true });
    expect(await c.next('error')).toMatchObject({ code: 'validation_failed' });
  });
});

describe('signaling', () => {
  it('assigns caller and receiver, and relays offer, answer and ICE between the two members only', async () => {
    const { ca, cb, ma } = await matchedPair(here, { track: open });
    const roomId = ma.roomId;
    ca.socket.emit('join_room', { roomId });
    expect(await ca.next('peer_joined')).toEqual({ role: 'caller', yourRole: 'caller' });
    cb.socket.emit('join_room', { roomId });
    expect(await cb.next('peer_joined')).toEqual({ role: 'receiver', yourRole: 'receiver' });
    expect(await ca.next('peer_joined')).toEqual({ role: 'receiver', yourRole: 'caller' });

    const intruder = await connected((await readyUser(t.app)).accessToken);
    intruder.socket.emit('webrtc_offer', { roomId, sdp: 'v=0 intruder' });
    expect(await intruder.next('error')).toMatchObject({ code: 'not_in_room' });

    ca.socket.emit('webrtc_offer', { roomId, sdp: 'v=0 offer' });
    expect(await cb.next('webrtc_offer')).toEqual({ sdp: 'v=0 offer' });
    cb.socket.emit('webrtc_answer', { roomId, sdp: 'v=0 answer' });
    expect(await ca.next('webrtc_answer')).toEqual({ sdp: 'v=0 answer' });
    const candidate = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    ca.socket.emit('webrtc_ice', { roomId, candidate });
    expect(await cb.next('webrtc_ice')).toEqual({ candidate });
    // nothing of the intruder's reached the members
    expect([...ca.received, ...cb.received].map((entry) => entry.payload)).not.toContainEqual({ sdp: 'v=0 intruder' });
  });

  it('tells exactly one side it is the caller, before the receiver pair, when both join in the same tick', async () => {
    for (let round = 0; round < 25; round += 1) {
      const { ca, cb, ma } = await matchedPair(here, { track: open });
      expectOneCaller(await joinInSameTick([ca, cb], ma.roomId));
      ca.close();
      cb.close();
    }
  });

  it('refuses relays in a call that has ended, though the socket had proved its membership', async () => {
    const { ca, cb, ma } = await matchedPair(here, { track: open });
    const roomId = ma.roomId;
    ca.socket.emit('join_room', { roomId });
    await ca.next('peer_joined');
    cb.socket.emit('join_room', { roomId });
    await cb.next('peer_joined');
    const candidate = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    cb.socket.emit('webrtc_ice', { roomId, candidate });
    expect(await ca.next('webrtc_ice')).toEqual({ candidate });

    ca.socket.emit('end_call', { roomId });
    expect(await cb.next('peer_left')).toEqual({ reason: 'ended' });
    cb.socket.emit('webrtc_ice', { roomId, candidate: { ...candidate, candidate: 'candidate:after the call' } });
    expect(await cb.next('error')).toMatchObject({ code: 'not_in_room' });
    // a round trip on the first socket: a relay written to it earlier would arrive first
    ca.socket.emit('end_call', { roomId });
    expect(await ca.next('error')).toMatchObject({ code: 'not_in_room' });
    expect(ca.received.map((entry) => entry.event)).not.toContain('webrtc_ice');
  });

  it('relays to the device that joined the call last, not to the other sockets of the same user', async () => {
    const { a, ca, cb, ma } = await matchedPair(here, { track: open });
    const roomId = ma.roomId;
    ca.socket.emit('join_room', { roomId });
    await ca.next('peer_joined');
    const phone = await connected(a.accessToken);
    phone.socket.emit('join_room', { roomId });
    await phone.next('peer_joined');
    cb.socket.emit('join_room', { roomId });
    await cb.next('peer_joined');

    cb.socket.emit('webrtc_offer', { roomId, sdp: 'v=0 for the phone' });
    expect(await phone.next('webrtc_offer')).toEqual({ sdp: 'v=0 for the phone' });
    // The server answers the first socket in order, so once this reply arrives any relay
    // meant for that socket would have arrived before it.
    ca.socket.emit('find_partner', { level: 'all' });
    expect(await ca.next('error')).toMatchObject({ code: 'already_in_room' });
    expect(ca.received.map((entry) => entry.event)).not.toContain('webrtc_offer');
  });

  it('bounds payload sizes', async () => {
    const { ca, ma } = await matchedPair(here, { track: open });
    ca.socket.emit('webrtc_offer', { roomId: ma.roomId, sdp: 'x'.repeat(20_001) });
    expect(await ca.next('error')).toMatchObject({ code: 'validation_failed' });
  });
});

describe('ending a call', () => {
  it('end_call closes the session once, tells the partner, updates both profiles, and allows one rating each', async () => {
    const { a, b, ca, cb, ma } = await matchedPair(here, { track: open });
    ca.socket.emit('end_call', { roomId: ma.roomId });
    expect(await cb.next('peer_left')).toEqual({ reason: 'ended' });
    await expect
      .poll(async () => (await t.container.db.query('SELECT ended_by FROM call_sessions WHERE room_id = $1', [ma.roomId]))[0].ended_by)
      .toBe('user_a');
    cb.socket.emit('end_call', { roomId: ma.roomId });
    expect(await cb.next('error')).toMatchObject({ code: 'not_in_room' });
    const stats = await t.container.db.query('SELECT total_sessions, streak_days FROM profiles WHERE user_id = ANY($1)', [[a.user.id, b.user.id]]);
    expect(stats).toEqual([
      { total_sessions: 1, streak_days: 1 },
      { total_sessions: 1, streak_days: 1 },
    ]);

    const history = (await injectAs(t.app, b, { method: 'GET', url: '/sessions' })).json();
    expect(history.items).toHaveLength(1);
    const call = history.items[0];
    expect(call).toMatchObject({ roomId: ma.roomId, partner: { id: a.user.id }, endedBy: 'user_a', myRating: null });
    const rate = (token: string, stars: number) => injectAs(t.app, token, { method: 'POST', url: `/sessions/${call.id}/rate`, payload: { stars } });
    expect((await rate(b.accessToken, 5)).json().myRating).toBe(5);
    expect((await rate(b.accessToken, 4)).json().error.code).toBe('already_rated');
    expect((await rate(a.accessToken, 0)).statusCode).toBe(400);
    const stranger = await register(t.app);
    expect((await rate(stranger.accessToken, 3)).statusCode).toBe(404);
    expect((await injectAs(t.app, stranger, { method: 'GET', url: `/sessions/${call.id}` })).statusCode).toBe(404);
  });

  it('ends the call when a user stays away past the grace period', async () => {
    const { ca, cb, ma } = await matchedPair(here, { track: open });
    ca.socket.emit('join_room', { roomId: ma.roomId });
    await ca.next('peer_joined');
    cb.socket.emit('join_room', { roomId: ma.roomId });
    await cb.next('peer_joined');
    ca.close();
    expect(await cb.next('peer_left')).toEqual({ reason: 'disconnected' });
    const [row] = await t.container.db.query('SELECT ended_by, duration_seconds FROM call_sessions WHERE room_id = $1', [ma.roomId]);
    expect(row.ended_by).toBe('user_a');
    expect(row.duration_seconds).toBeGreaterThanOrEqual(0);
  });

  it('keeps the call through a short drop when the user comes back', async () => {
    const { a, ca, cb, ma, callId } = await matchedPair(here, { track: open });
    ca.close();
    const back = await connected(a.accessToken);
    back.socket.emit('join_room', { roomId: ma.roomId });
    expect(await back.next('peer_joined')).toMatchObject({ yourRole: 'caller' });
    // the grace timer gives no sign when it passes: watch the call past its 400 ms
    await stays(
      async () =>
        !cb.received.some((entry) => entry.event === 'peer_left') &&
        (await t.container.db.query('SELECT ended_at FROM call_sessions WHERE id = $1', [callId]))[0].ended_at === null,
      { forMs: 600, message: 'the call runs on after the user came back' },
    );
  });
});

describe('a match left before the call', () => {
  const queueHead = () => t.container.redis.client.lindex('match:queue:all', 0);
  const endedBy = async (roomId: string) =>
    (await t.container.db.query('SELECT ended_by, ended_at FROM call_sessions WHERE room_id = $1', [roomId]))[0] as { ended_by: string; ended_at: Date | null };

  it('cancel_search after match_found: the partner (in the room already) hears partner_cancelled and searches again at the front', async () => {
    const { a, ca, cb, ma } = await matchedPair(here, { track: open });
    ca.socket.emit('join_room', { roomId: ma.roomId });
    expect(await ca.next('peer_joined')).toMatchObject({ role: 'caller' });
    expect(await cb.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
    await ca.next('partner_cancelled');
    expect(await queueHead()).toBe(a.user.id);
    expect(await endedBy(ma.roomId)).toMatchObject({ ended_by: 'user_b', ended_at: expect.any(Date) });
    // the old room is gone for both
    ca.socket.emit('webrtc_offer', { roomId: ma.roomId, sdp: 'v=0 stale' });
    expect(await ca.next('error')).toMatchObject({ code: 'not_in_room' });
    // the one who cancelled is free, and the next seeker gets the partner who was left
    const next = await connected((await readyUser(t.app)).accessToken);
    next.socket.emit('find_partner', { level: 'all' });
    const [found, foundByA] = await Promise.all([next.next<MatchFound>('match_found'), ca.next<MatchFound>('match_found')]);
    expect(found.roomId).toBe(foundByA.roomId);
    expect(found.partner.displayName).toBe(`u_${a.user.id.slice(0, 8)}`);
    cb.socket.emit('find_partner', { level: 'all' });
    await cb.next('searching');
    expect(await cb.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });

  it('a partner who disconnects before joining and stays away: the other hears partner_cancelled and is matched at once with someone waiting', async () => {
    const { b, ca, cb, ma } = await matchedPair(here, { track: open });
    const waiting = await connected((await readyUser(t.app)).accessToken);
    waiting.socket.emit('find_partner', { level: 'all' });
    await waiting.next('searching');
    cb.close();
    await ca.next('partner_cancelled');
    const [again, forWaiting] = await Promise.all([ca.next<MatchFound>('match_found'), waiting.next<MatchFound>('match_found')]);
    expect(again.roomId).toBe(forWaiting.roomId);
    expect(again.roomId).not.toBe(ma.roomId);
    expect(await endedBy(ma.roomId)).toMatchObject({ ended_by: 'user_b' });
    expect(await t.container.redis.client.get(`match:user:${b.user.id}:room`)).toBeNull();
  });
});

describe('calls past their time', () => {
  const clock = manualClock();
  let timed: TestApp;
  let timedUrl: string;
  beforeAll(async () => {
    // its own database, so the sweep job (with this clock) runs on this app and not the file's other one
    timed = await buildTestApp({ clock, env: { DATABASE_URL: await separateDatabaseUrl(), CALL_MAX_DURATION: '30m', CALL_SWEEP_INTERVAL: '50ms' } });
    timedUrl = await listen(timed.app);
  });
  afterAll(() => timed.close());

  async function pairOn() {
    const { a, b, ca, cb, roomId } = await matchedPair({ t: timed, url: timedUrl }, { track: open });
    return { ca, cb, roomId, keyA: `match:user:${a.user.id}:room`, keyB: `match:user:${b.user.id}:room` };
  }
  const callRow = async (roomId: string) =>
    (await timed.container.db.query('SELECT ended_by, duration_seconds FROM call_sessions WHERE room_id = $1', [roomId]))[0];

  it('ends a call that runs past CALL_MAX_DURATION, telling both, and frees both to search again', async () => {
    const { ca, cb, roomId } = await pairOn();
    clock.advance(29 * 60_000);
    // two sweeps complete with the call under its limit (the second one began after the advance)
    const sweeps = async () => (await timed.container.jobs.queue.stats()).find((entry) => entry.queue === 'calls.end-stale')!.counts.completed;
    const before = await sweeps();
    await eventually(sweeps, (count) => count >= before + 2);
    expect(await callRow(roomId)).toEqual({ ended_by: null, duration_seconds: null });
    expect(ca.received.map((entry) => entry.event)).not.toContain('peer_left');

    clock.advance(60_000 + 1);
    expect(await ca.next('peer_left')).toEqual({ reason: 'timeout' });
    expect(await cb.next('peer_left')).toEqual({ reason: 'timeout' });
    expect(await callRow(roomId)).toEqual({ ended_by: 'timeout', duration_seconds: 30 * 60 });

    ca.socket.emit('find_partner', { level: 'all' });
    await ca.next('searching');
    cb.socket.emit('find_partner', { level: 'all' });
    expect((await cb.next<MatchFound>('match_found')).roomId).not.toBe(roomId);
  });

  it('adds up practice to the second: three 20-second calls make a minute', async () => {
    const { a, b, ca, cb, roomId } = await matchedPair({ t: timed, url: timedUrl }, { track: open });
    const profileOf = async (token: string) =>
      (await injectAs(timed.app, token, { method: 'GET', url: '/users/me' })).json<{ profile: { totalPracticeMins: number; totalPracticeSeconds: number } }>()
        .profile;
    let room = roomId;
    for (let call = 1; call <= 3; call += 1) {
      if (call > 1) {
        ca.socket.emit('find_partner', { level: 'all' });
        await ca.next('searching');
        cb.socket.emit('find_partner', { level: 'all' });
        room = (await cb.next<MatchFound>('match_found')).roomId;
        await ca.next('match_found');
      }
      clock.advance(20_000);
      ca.socket.emit('end_call', { roomId: room });
      expect(await cb.next('peer_left')).toEqual({ reason: 'ended' });
      await eventually(
        () => callRow(room),
        (row) => row?.duration_seconds === 20,
      );
    }
    for (const user of [a, b]) expect(await profileOf(user.accessToken)).toMatchObject({ totalPracticeSeconds: 60, totalPracticeMins: 1 });
  });

  it('ends a call whose room Redis no longer has, leaving alone the newer room a user is in', async () => {
    const { ca, cb, roomId, keyA, keyB } = await pairOn();
    const redis = timed.container.redis.client;
    expect(await redis.mget(keyA, keyB)).toEqual([roomId, roomId]);
    // Redis lost the room (its TTL passed, say) while user A already belongs to a newer one
    await redis.del(`match:room:${roomId}:users`, `match:room:${roomId}:meta`);
    await redis.set(keyA, 'a-newer-room');

    expect(await ca.next('peer_left')).toEqual({ reason: 'timeout' });
    expect(await cb.next('peer_left')).toEqual({ reason: 'timeout' });
    expect((await callRow(roomId)).ended_by).toBe('timeout');
    expect(await redis.mget(keyA, keyB)).toEqual(['a-newer-room', null]);
    await redis.del(keyA);
  });
});

describe('search timeout', () => {
  it('ends a search that found nobody and tells the client', async () => {
    const quick = await buildTestApp({ env: { MATCH_SEARCH_TIMEOUT: '300ms' } });
    try {
      const base = await listen(quick.app);
      const user = await readyUser(quick.app, 'advanced');
      const c = await client(base, user.accessToken);
      c.socket.emit('find_partner', { level: 'advanced' });
      await c.next('searching');
      expect(await c.next('search_timeout')).toEqual({ reason: 'no partner found in time' });
      c.socket.emit('find_partner', { level: 'advanced' });
      await c.next('searching'); // searching again is allowed
      // a searching key gone a moment before the timer (both are the search's length): the search still ends, told
      await quick.container.redis.client.del(`match:searching:${user.user.id}`);
      expect(await c.next('search_timeout')).toEqual({ reason: 'no partner found in time' });
      expect(await quick.container.redis.client.lrange('match:queue:advanced', 0, -1)).not.toContain(user.user.id);
      c.close();
    } finally {
      await quick.close();
    }
  });
});

describe('an instance that shuts down', () => {
  it('tells its socket clients, drops them so that they reconnect elsewhere, and ends its searches', async () => {
    const stopping = await buildTestApp();
    const base = await listen(stopping.app);
    const searcher = await readyUser(stopping.app, 'advanced');
    const c = await client(base, searcher.accessToken);
    c.socket.emit('find_partner', { level: 'advanced' });
    await c.next('searching');
    const idle = await client(base, (await register(stopping.app)).accessToken);
    const reasons = [c, idle].map((each) => new Promise<string>((resolve) => each.socket.once('disconnect', resolve)));

    await stopping.app.close();
    const redis = stopping.container.redis.client;
    const [searching, queue] = await Promise.all([redis.exists(`match:searching:${searcher.user.id}`), redis.lrange('match:queue:advanced', 0, -1)]);
    await stopping.container.close();

    // "transport close", not "io server disconnect": Socket.io clients reconnect by themselves
    expect(await Promise.all(reasons)).toEqual(['transport close', 'transport close']);
    for (const each of [c, idle]) expect(each.received.map((entry) => entry.event)).toContain('server_shutdown');
    expect(c.received.find((entry) => entry.event === 'server_shutdown')?.payload).toEqual({ reconnect: true });
    expect(searching).toBe(0);
    expect(queue).not.toContain(searcher.user.id);
  });
});
