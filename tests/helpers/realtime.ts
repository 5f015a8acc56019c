import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import type { App } from '../../src/app.js';
import type { TestApp } from './app.js';
import { injectAs, type Pair, register } from './auth.js';

export async function listen(app: App): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** A registered user whose profile is complete enough to be matched. */
export async function readyUser(app: App, level: 'beginner' | 'intermediate' | 'advanced' = 'intermediate'): Promise<Pair & { email: string }> {
  const account = await register(app);
  const username = `u_${account.user.id.slice(0, 8)}`;
  const res = await injectAs(app, account, {
    method: 'PATCH',
    url: '/users/me',
    payload: { version: 1, username, displayName: username, englishLevel: level },
  });
  if (res.statusCode !== 200) throw new Error(`profile: ${res.body}`);
  return account;
}

/** How long `next` waits for an event unless told otherwise: an event this late means it is not coming. */
const NEXT_EVENT_TIMEOUT_MS = 5_000;

export interface Client {
  socket: Socket;
  /**
   * Resolves with the next `event` (or one already received and not yet taken); rejects, naming
   * the event, when none arrives within `timeoutMs`.
   */
  next<T = unknown>(event: string, options?: { timeoutMs?: number }): Promise<T>;
  /** Events received so far, by name. */
  received: Array<{ event: string; payload: unknown }>;
  close(): void;
}

export async function client(url: string, token: string | undefined): Promise<Client> {
  const socket = connect(url, { auth: token ? { token } : {}, transports: ['websocket'], reconnection: false, forceNew: true });
  const received: Client['received'] = [];
  const waiting: Array<{ event: string; resolve: (payload: unknown) => void; timer: NodeJS.Timeout }> = [];
  socket.onAny((event: string, payload: unknown) => {
    const waiter = waiting.find((w) => w.event === event);
    if (waiter) {
      waiting.splice(waiting.indexOf(waiter), 1);
      clearTimeout(waiter.timer);
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
    next: <T>(event: string, { timeoutMs = NEXT_EVENT_TIMEOUT_MS } = {}) => {
      const index = received.findIndex((entry) => entry.event === event);
      if (index >= 0) return Promise.resolve(received.splice(index, 1)[0]!.payload as T);
      return new Promise<T>((resolve, reject) => {
        const waiter = {
          event,
          resolve: resolve as (payload: unknown) => void,
          timer: setTimeout(() => {
            waiting.splice(waiting.indexOf(waiter), 1);
            const meanwhile = received.map((entry) => entry.event).join(', ') || 'nothing';
            reject(new Error(`no '${event}' event within ${timeoutMs} ms (received and not taken: ${meanwhile})`));
          }, timeoutMs),
        };
        waiting.push(waiter);
      });
    },
    close: () => {
      // a test that closes its socket is done waiting on it
      for (const waiter of waiting.splice(0)) clearTimeout(waiter.timer);
      socket.disconnect();
    },
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

export interface MatchFound {
  roomId: string;
  partner: { displayName: string; avatarUrl: string | null; level: string };
  iceServers: Array<{ urls: string[]; username?: string; credential?: string }>;
}

/** A test app listening for sockets. */
export interface Instance {
  t: TestApp;
  url: string;
}

export interface MatchedPair {
  /** The first seeker, who waited in the queue, and the second, who found them. */
  a: Pair & { email: string };
  b: Pair & { email: string };
  ca: Client;
  cb: Client;
  ma: MatchFound;
  mb: MatchFound;
  roomId: string;
  /** The call_sessions row the match opened. */
  callId: string;
}

/**
 * Two ready users, connected and matched: A searches (and is queued), then B searches and both
 * hear match_found. B connects to `second` when given (another instance). Each client goes into
 * `track` as soon as it connects, for the test file to close.
 */
export async function matchedPair(
  first: Instance,
  { second = first, level = 'all', track }: { second?: Instance; level?: 'all' | 'beginner' | 'intermediate' | 'advanced'; track?: Client[] } = {},
): Promise<MatchedPair> {
  const [a, b] = [await readyUser(first.t.app), await readyUser(second.t.app)];
  const ca = await client(first.url, a.accessToken);
  track?.push(ca);
  const cb = await client(second.url, b.accessToken);
  track?.push(cb);
  ca.socket.emit('find_partner', { level });
  await ca.next('searching');
  cb.socket.emit('find_partner', { level });
  const [ma, mb] = await Promise.all([ca.next<MatchFound>('match_found'), cb.next<MatchFound>('match_found')]);
  expect(mb.roomId).toBe(ma.roomId);
  const [call] = await first.t.container.db.query<Array<{ id: string }>>('SELECT id FROM call_sessions WHERE room_id = $1', [ma.roomId]);
  if (!call) throw new Error(`no call_sessions row for room ${ma.roomId}`);
  return { a, b, ca, cb, ma, mb, roomId: ma.roomId, callId: call.id };
}
