import { afterAll, afterEach, beforeAll, describe, expect, it, inject } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs } from './helpers/auth.js';
import { client, expectOneCaller, joinInSameTick, listen, matchedPair, readyUser, type Client } from './helpers/realtime.js';

// Several instances need a Redis they share: the suite's real one (TEST_REDIS_URL, set in CI).
const realRedis = Boolean(inject('redisUrl'));

describe.runIf(realRedis).each(['sharded', 'classic'])('two instances on one Redis (%s adapter)', (adapter) => {
  let one: TestApp;
  let two: TestApp;
  let urlOne: string;
  let urlTwo: string;
  const open: Client[] = [];
  beforeAll(async () => {
    const shared = { REALTIME_CHANNEL_PREFIX: `parley-cluster-${adapter}-${process.pid}`, REALTIME_ADAPTER: adapter };
    one = await buildTestApp({ env: shared });
    two = await buildTestApp({ env: shared });
    urlOne = await listen(one.app);
    urlTwo = await listen(two.app);
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await one.close();
    await two.close();
  });

  it('matches a user on instance A with a user on instance B, and relays their signaling both ways', async () => {
    const { ca, cb, roomId } = await matchedPair({ t: one, url: urlOne }, { second: { t: two, url: urlTwo }, track: open });
    ca.socket.emit('join_room', { roomId });
    await ca.next('peer_joined');
    cb.socket.emit('join_room', { roomId });
    expect(await ca.next('peer_joined')).toMatchObject({ yourRole: 'caller' });
    ca.socket.emit('webrtc_offer', { roomId, sdp: 'offer from A' });
    expect(await cb.next('webrtc_offer')).toEqual({ sdp: 'offer from A' });
    cb.socket.emit('webrtc_answer', { roomId, sdp: 'answer from B' });
    expect(await ca.next('webrtc_answer')).toEqual({ sdp: 'answer from B' });
    const candidate = { candidate: 'candidate:2 1 udp 1 198.51.100.2 40000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    cb.socket.emit('webrtc_ice', { roomId, candidate });
    expect(await ca.next('webrtc_ice')).toEqual({ candidate });
    cb.socket.emit('end_call', { roomId });
    expect(await ca.next('peer_left')).toEqual({ reason: 'ended' });
    // A's instance had A's membership in memory; ending the call on B's instance took it away.
    ca.socket.emit('webrtc_ice', { roomId, candidate });
    expect(await ca.next('error')).toMatchObject({ code: 'not_in_room' });
  });

  it('tells exactly one side it is the caller when partners on two instances join in the same tick', async () => {
    for (let round = 0; round < 20; round += 1) {
      const { ca, cb, roomId } = await matchedPair({ t: one, url: urlOne }, { second: { t: two, url: urlTwo }, track: open });
      expectOneCaller(await joinInSameTick(round % 2 ? [ca, cb] : [cb, ca], roomId));
      for (const each of open.splice(0)) each.close();
    }
  });

  it('puts a user back in the queue, as searching on its own instance, when the partner on the other instance cancels before joining', async () => {
    const { a, ca, cb } = await matchedPair({ t: one, url: urlOne }, { second: { t: two, url: urlTwo }, level: 'beginner', track: open });
    const cc = await client(urlTwo, (await readyUser(two.app, 'beginner')).accessToken);
    open.push(cc);
    expect(await cb.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
    await ca.next('partner_cancelled');
    expect(await one.container.redis.client.hget('match:searching-on', a.user.id)).toBe(one.container.services.matchmaking.instanceId);
    expect(await cc.socket.emitWithAck('find_partner', { level: 'beginner' })).toEqual({ status: 'matched' });
    const [forA, forC] = await Promise.all([ca.next<{ roomId: string }>('match_found'), cc.next<{ roomId: string }>('match_found')]);
    expect(forA.roomId).toBe(forC.roomId);
  });

  it('closes a signed-out session on the other instance', async () => {
    const user = await readyUser(one.app);
    const c = await client(urlTwo, user.accessToken);
    open.push(c);
    const closed = new Promise((resolve) => c.socket.once('disconnect', resolve));
    await injectAs(one.app, user, { method: 'POST', url: '/auth/logout' });
    expect(await closed).toBe('io server disconnect');
  });
});
