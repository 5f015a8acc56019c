import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import type { App } from '../../src/app.js';
import { bearer, register, type Pair } from './auth.js';

export async function listen(app: App): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** A registered user whose profile is complete enough to be matched. */
export async function readyUser(app: App, level: 'beginner' | 'intermediate' | 'advanced' = 'intermediate'): Promise<Pair & { email: string }> {
  const account = await register(app);
  const username = `u_${account.user.id.slice(0, 8)}`;
  const res = await app.inject({
    method: 'PATCH',
    url: '/users/me',
    headers: bearer(account.accessToken),
    payload: { version: 1, username, displayName: username, englishLevel: level },
  });
  if (res.statusCode !== 200) throw new Error(`profile: ${res.body}`);
  return account;
}

export interface Client {
  socket: Socket;
  /** Resolves with the next `event` (or one already received and not yet taken). */
  next<T = unknown>(event: string): Promise<T>;
  /** Events received so far, by name. */
  received: Array<{ event: string; payload: unknown }>;
  close(): void;
}

export async function client(url: string, token: string | undefined): Promise<Client> {
  const socket = connect(url, { auth: token ? { token } : {}, transports: ['websocket'], reconnection: false, forceNew: true });
  const received: Client['received'] = [];
  const waiting: Array<{ event: string; resolve: (payload: unknown) => void }> = [];
  socket.onAny((event: string, payload: unknown) => {
    const waiter = waiting.find((w) => w.event === event);
    if (waiter) {
      waiting.splice(waiting.indexOf(waiter), 1);
      waiter.resolve(payload);
    } else received.push({ event, payload });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => reject(error));
  });
  return {
    socket,
    received,
    next: <T>(event: string) => {
      const index = received.findIndex((entry) => entry.event === event);
      if (index >= 0) return Promise.resolve(received.splice(index, 1)[0]!.payload as T);
      return new Promise<T>((resolve) => waiting.push({ event, resolve: resolve as (payload: unknown) => void }));
    },
    close: () => void socket.disconnect(),
  };
}

/** The connect_error a refused handshake produces. */
export async function refusal(url: string, token: string | undefined): Promise<{ code: string }> {
  const socket = connect(url, { auth: token ? { token } : {}, transports: ['websocket'], reconnection: false, forceNew: true });
  try {
    return await new Promise((resolve, reject) => {
      socket.once('connect', () => reject(new Error('connected, expected a refusal')));
      socket.once('connect_error', (error: Error & { data?: { code: string } }) => resolve(error.data ?? { code: error.message }));
    });
  } finally {
    socket.disconnect();
  }
}

export interface PeerJoined {
  role: 'caller' | 'receiver';
  yourRole: 'caller' | 'receiver';
}

/**
 * Sends join_room from both matched clients in the same tick and returns the peer_joined
 * events each got up to (and with) its first `{ role: "receiver" }`; `extra` holds those that
 * came after, read after a round trip on each socket.
 */
export async function joinInSameTick(clients: [Client, Client], roomId: string): Promise<{ sequences: PeerJoined[][]; extra: PeerJoined[] }> {
  for (const c of clients) c.socket.emit('join_room', { roomId });
  const untilReceiver = async (c: Client) => {
    const seen: PeerJoined[] = [];
    // at most caller then receiver; a third event would already be wrong
    while (seen.length < 3) {
      const event = await c.next<PeerJoined>('peer_joined');
      seen.push(event);
      if (event.role === 'receiver') break;
    }
    return seen;
  };
  const sequences = await Promise.all(clients.map(untilReceiver));
  await Promise.all(clients.map((c) => c.socket.timeout(10_000).emitWithAck('cancel_search')));
  const extra = clients.flatMap((c) => c.received.filter((entry) => entry.event === 'peer_joined').map((entry) => entry.payload as PeerJoined));
  return { sequences, extra };
}

/** What module 05 promises whatever the timing: one side told "caller" first, then both told "receiver", nothing more. */
export function expectOneCaller({ sequences, extra }: { sequences: PeerJoined[][]; extra: PeerJoined[] }): void {
  const [first, second] = sequences[0]![0]?.role === 'caller' ? sequences : [sequences[1]!, sequences[0]!];
  expect({ caller: first, receiver: second, extra }).toEqual({
    caller: [
      { role: 'caller', yourRole: 'caller' },
      { role: 'receiver', yourRole: 'caller' },
    ],
    receiver: [{ role: 'receiver', yourRole: 'receiver' }],
    extra: [],
  });
}
