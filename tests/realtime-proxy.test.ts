import { io as connect } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';
import { listen } from './helpers/realtime.js';

let t: TestApp;
let url: string;
beforeAll(async () => {
  // proxy-addr's range names, as Fastify accepts them for TRUST_PROXY
  t = await buildTestApp({ env: { TRUST_PROXY: 'loopback', SOCKET_MAX_PER_IP: '1' } });
  url = await listen(t.app);
});
afterAll(() => t.close());

/** Opens a socket that a proxy on loopback forwards for `client`; resolves once it connects or is refused. */
async function open(token: string, client: string) {
  const socket = connect(url, { auth: { token }, extraHeaders: { 'x-forwarded-for': client }, transports: ['websocket'], reconnection: false, forceNew: true });
  const outcome = await new Promise<true | string>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('connect_error', (error) => resolve(error.message));
  });
  return { socket, outcome };
}

describe('socket limits behind a proxy named by range (TRUST_PROXY=loopback)', () => {
  it('starts, and counts sockets per forwarded client IP', async () => {
    const { accessToken } = await register(t.app);
    const first = await open(accessToken, '203.0.113.1');
    const same = await open(accessToken, '203.0.113.1');
    const other = await open(accessToken, '203.0.113.2');
    try {
      expect(first.outcome).toBe(true);
      expect(same.outcome).not.toBe(true);
      expect(other.outcome).toBe(true);
    } finally {
      for (const { socket } of [first, same, other]) socket.disconnect();
    }
  });
});
