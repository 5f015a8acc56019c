import { io as connect } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';
import { client, listen, readyUser, refusal, type Client } from './helpers/realtime.js';

let t: TestApp;
let url: string;
const open: Client[] = [];
beforeAll(async () => {
  t = await buildTestApp({
    env: {
      FRONTEND_URL: 'https://app.parley.test',
      SOCKET_MAX_PER_USER: '3',
      SOCKET_MAX_PER_IP: '8',
      SOCKET_EVENT_RATE: '5',
      SOCKET_EVENT_BURST: '10',
    },
  });
  url = await listen(t.app);
});
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  // the server has counted every socket out before the next test counts again
  await expect.poll(() => t.container.realtime.onlineUserCount()).toBe(0);
});
afterAll(() => t.close());

async function connected(token: string): Promise<Client> {
  const c = await client(url, token);
  open.push(c);
  return c;
}

/** Whether a handshake with these headers connects (true) or is refused (the error's message). */
async function handshake(token: string, extraHeaders: Record<string, string>): Promise<true | string> {
  const socket = connect(url, { auth: { token }, extraHeaders, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('connect_error', (error) => resolve(error.message));
    });
  } finally {
    socket.disconnect();
  }
}

describe('socket limits', () => {
  it('caps the sockets of one account, and frees the place when one closes', async () => {
    const { accessToken } = await register(t.app);
    const sockets = [await connected(accessToken), await connected(accessToken), await connected(accessToken)];
    expect(await refusal(url, accessToken)).toMatchObject({ code: 'too_many_sockets' });
    sockets[0]!.close();
    await expect.poll(() => handshake(accessToken, {}), { timeout: 5_000 }).toBe(true);
  });

  it('caps the connections of one IP, whatever the account', async () => {
    const accounts = await Promise.all(Array.from({ length: 9 }, () => register(t.app)));
    for (const account of accounts.slice(0, 8)) await connected(account.accessToken);
    expect(await handshake(accounts[8]!.accessToken, {})).not.toBe(true);
  });

  it('checks the Origin of the handshake against FRONTEND_URL; native clients send none', async () => {
    const { accessToken } = await register(t.app);
    expect(await handshake(accessToken, { origin: 'https://evil.example' })).not.toBe(true);
    expect(await handshake(accessToken, { origin: 'https://app.parley.test' })).toBe(true);
    expect(await handshake(accessToken, { origin: url })).toBe(true); // the server's own pages
    expect(await handshake(accessToken, {})).toBe(true);
  });

  it('answers a flood with rate_limited, serving the budget only, and disconnects a socket that keeps on', async () => {
    const user = await readyUser(t.app);
    const c = await connected(user.accessToken);
    let answered = 0;
    for (let i = 0; i < 15; i += 1) c.socket.emit('cancel_search', () => (answered += 1));
    expect(await c.next('error')).toMatchObject({ code: 'rate_limited' });
    // the bucket's 10 are answered, the 5 beyond it are not
    await expect.poll(() => answered).toBe(10);
    expect(c.socket.connected).toBe(true);

    const closed = new Promise<string>((resolve) => c.socket.once('disconnect', resolve));
    for (let i = 0; i < 10_000; i += 1) c.socket.emit('find_partner', { level: 'all' });
    expect(await closed).toBe('io server disconnect');
  });

  it('bounds the payload of each event', async () => {
    const user = await readyUser(t.app);
    const c = await connected(user.accessToken);
    c.socket.emit('join_room', { roomId: '00000000-0000-4000-8000-000000000000', padding: 'x'.repeat(30_000) });
    expect(await c.next('error')).toMatchObject({ code: 'payload_too_large' });
    c.socket.emit('webrtc_offer', { roomId: '00000000-0000-4000-8000-000000000000', sdp: 'v=0' });
    expect(await c.next('error')).toMatchObject({ code: 'not_in_room' });
  });
});
