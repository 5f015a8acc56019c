import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io as connect, type Socket } from 'socket.io-client';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { startServer } from './lib.js';

/**
 * npm run bench:realtime
 * One Parley instance (compiled) and the clients in this second process. Measures: the most
 * authenticated sockets held and memory per socket; find_partner -> match_found latency at a
 * steady arrival rate (checking every client is matched exactly once); signaling relay round
 * trips with every call in progress. Embedded Redis (in-memory adapter), or BENCH_REDIS_URL
 * with BENCH_DATABASE_URL (BENCH_ADAPTER=sharded|classic Redis adapter). BENCH_NODE_OPTIONS
 * passes V8 flags to the server (e.g. --max-semi-space-size=64 for GC experiments).
 * Results: bench/results/realtime-<mode>.json.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 10_000);
const USERS = Number(process.env.BENCH_MATCH_USERS ?? 2_000);
const RATE = Number(process.env.BENCH_SEARCH_RATE ?? 500);
const RELAYS = Number(process.env.BENCH_RELAYS ?? 10_000);
const RELAY_RATE = Number(process.env.BENCH_RELAY_RATE ?? 1_000);
const adapter = process.env.BENCH_ADAPTER === 'classic' ? 'classic' : 'sharded';
const mode = process.env.BENCH_REDIS_URL ? `redis-${adapter}-adapter` : 'embedded';

execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-rt-'));
chmodSync(cwd, 0o755);
const port = await findFreePort();
const base = `http://127.0.0.1:${port}`;
// Capacity runs on its own server process: collecting its 10,000 sockets' garbage (a major
// GC of about 300 MB) would otherwise land in the relay measurement that follows.
const startParley = () =>
  startServer(process.execPath, [path.join(root, 'dist/src/main.js')], {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      BCRYPT_COST: '4',
      AUTH_REGISTER_LIMIT: '1000000/1m',
      RATE_LIMIT_REQUESTS: '100000000',
      // every client socket comes from this one process: the per-IP and per-account socket caps
      // would refuse most of them (each socket sends about one event a second, within its budget)
      SOCKET_MAX_PER_IP: String(SOCKETS + 1_000),
      SOCKET_MAX_PER_USER: String(Math.ceil(SOCKETS / USERS) + 1),
      DATABASE_URL: process.env.BENCH_DATABASE_URL,
      REDIS_URL: process.env.BENCH_REDIS_URL,
      REALTIME_CHANNEL_PREFIX: `parley-bench-${process.pid}`,
      REALTIME_ADAPTER: adapter,
      NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS,
    },
    readyUrl: `${base}/ready`,
  });
let server = await startParley();

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 100) / 100;
};
async function post(pathname: string, body: unknown, token?: string, method = 'POST') {
  const response = await fetch(`${base}${pathname}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${pathname}: ${response.status} ${await response.text()}`);
  return (await response.json()) as { accessToken: string; user: { id: string } };
}
async function readyUser(index: number): Promise<{ id: string; token: string }> {
  const pair = await post('/auth/register', {
    email: `rt-${process.pid}-${index}@parley.test`,
    password: 'benchmark passphrase',
    deviceId: 'bench',
    platform: 'web',
  });
  await post('/users/me', { version: 1, username: `rt_${process.pid}_${index}`, englishLevel: 'intermediate' }, pair.accessToken, 'PATCH');
  return { id: pair.user.id, token: pair.accessToken };
}
async function inBatches<T>(count: number, size: number, make: (index: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += size)
    out.push(...(await Promise.all(Array.from({ length: Math.min(size, count - start) }, (_, i) => make(start + i)))));
  return out;
}
const open = (token: string) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect(base, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
/**
 * Calls `send(i)` for i = 0..count-1 at `perSecond`, sending whatever is due every
 * millisecond. It sleeps in between: a busy-waiting pacer would take one of this machine's
 * two cores from the server it measures.
 */
async function atSteadyRate(count: number, perSecond: number, send: (index: number) => void): Promise<void> {
  const start = performance.now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - start) * perSecond) / 1000) + 1);
    while (sent < due) send(sent++);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
async function serverRssBytes(): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0);
}

console.log(`creating ${USERS} users`);
const users = await inBatches(USERS, 25, readyUser);

// 1. Capacity: authenticated sockets held at once.
const rssBefore = await serverRssBytes();
const connectStarted = performance.now();
const held = await inBatches(SOCKETS, 250, (index) => open(users[index % users.length]!.token));
const connectSeconds = (performance.now() - connectStarted) / 1000;
await new Promise((resolve) => setTimeout(resolve, 1_000)); // let the server settle before reading memory
const rssHeld = await serverRssBytes();
for (const socket of held) socket.disconnect();
console.log(`held ${held.length} sockets in ${connectSeconds.toFixed(1)} s`);
await server.stop();
server = await startParley();

// 2. Matching at a steady arrival rate: every user searches once, in random order.
const sockets = await inBatches(USERS, 250, (index) => open(users[index]!.token));
const searchedAt = new Map<number, number>();
const matches = new Map<number, { roomId: string; at: number }[]>();
const allMatched = new Promise<void>((resolve) => {
  let seen = 0;
  sockets.forEach((socket, index) =>
    socket.on('match_found', ({ roomId }: { roomId: string }) => {
      const list = matches.get(index) ?? [];
      list.push({ roomId, at: performance.now() });
      matches.set(index, list);
      seen += 1;
      if (seen === USERS) resolve();
    }),
  );
});
const order = [...sockets.keys()].sort(() => Math.random() - 0.5);
await atSteadyRate(order.length, RATE, (i) => {
  searchedAt.set(order[i]!, performance.now());
  sockets[order[i]!]!.emit('find_partner', { level: 'all' });
});
await Promise.race([allMatched, new Promise((resolve) => setTimeout(resolve, 30_000))]);
const byRoom = new Map<string, number[]>();
for (const [index, list] of matches) for (const match of list) byRoom.set(match.roomId, [...(byRoom.get(match.roomId) ?? []), index]);
const matchedOnce = [...sockets.keys()].every((index) => matches.get(index)?.length === 1);
const roomsOfTwo = [...byRoom.values()].every((members) => members.length === 2 && members[0] !== members[1]);
// latency: from the later of the two searches (the moment a match became possible) to match_found
const matchLatencies = [...byRoom.values()].flatMap((members) => {
  const possibleAt = Math.max(...members.map((index) => searchedAt.get(index)!));
  return members.map((index) => matches.get(index)![0]!.at - possibleAt);
});

// 3. Relay round trips with every call in progress: join, then ICE candidates bounced back.
const rooms = [...byRoom.entries()];
await Promise.all(
  rooms.flatMap(([roomId, members]) =>
    members.map(
      (index) =>
        new Promise<void>((resolve) => {
          sockets[index]!.once('peer_joined', () => resolve());
          sockets[index]!.emit('join_room', { roomId });
        }),
    ),
  ),
);
for (const [roomId, [, second]] of rooms) {
  // the second member echoes every candidate back
  sockets[second!]!.on('webrtc_ice', ({ candidate }: { candidate: unknown }) => sockets[second!]!.emit('webrtc_ice', { roomId, candidate }));
}
// An open loop at a steady rate spread over every call (signaling is bursty per call but
// light overall); each candidate carries its send time's key, so the echo finds it.
let relayRtts: number[] = [];
const pending = new Map<string, number>();
for (const [, [first]] of rooms) {
  sockets[first!]!.on('webrtc_ice', ({ candidate }: { candidate: { candidate: string } }) => {
    const sent = pending.get(candidate.candidate);
    if (sent === undefined) return;
    pending.delete(candidate.candidate);
    relayRtts.push(performance.now() - sent);
  });
}
async function relayAtSteadyRate(round: string, count: number): Promise<void> {
  await atSteadyRate(count, RELAY_RATE, (i) => {
    const [roomId, [first]] = rooms[i % rooms.length]!;
    const key = `candidate:${round}${i} 1 udp 2122260223 192.0.2.1 50000 typ host`;
    pending.set(key, performance.now());
    sockets[first!]!.emit('webrtc_ice', { roomId, candidate: { candidate: key, sdpMid: '0', sdpMLineIndex: 0 } });
  });
  const deadline = performance.now() + 10_000;
  while (pending.size && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}
// Two seconds of warm-up first (as the HTTP bench does), so the first relays of each call
// and the JIT's first compilations are not what the measurement reports.
await relayAtSteadyRate('warm-up', 2 * RELAY_RATE);
relayRtts = [];
await relayAtSteadyRate('', RELAYS);
for (const socket of sockets) socket.disconnect();
await server.stop();

const report = {
  date: new Date().toISOString(),
  mode,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  capacity: {
    sockets: held.length,
    connectSeconds: Math.round(connectSeconds * 10) / 10,
    rssMiB: Math.round(rssHeld / 1_048_576),
    kibPerSocket: Math.round((rssHeld - rssBefore) / 1024 / held.length),
  },
  matching: {
    users: USERS,
    searchesPerSecond: RATE,
    matched: matches.size,
    everyoneMatchedExactlyOnce: matchedOnce && roomsOfTwo,
    p50Ms: percentile(matchLatencies, 50),
    p99Ms: percentile(matchLatencies, 99),
  },
  relay: {
    callsInProgress: rooms.length,
    roundTripsPerSecond: RELAY_RATE,
    roundTrips: relayRtts.length,
    lost: pending.size,
    p50Ms: percentile(relayRtts, 50),
    p99Ms: percentile(relayRtts, 99),
  },
};
mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, `bench/results/realtime-${mode}.json`), `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));
