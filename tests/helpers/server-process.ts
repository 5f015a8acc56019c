import { chmodSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../src/infra/embedded-postgres.js';
import { testEnv } from './app.js';
import { parseResponses } from './raw-http.js';
import { repoRoot, run, waitForOk, type Spawned } from './spawn.js';

export interface ServerProcess {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  spawned: Spawned;
  /** The JSON lines the process has logged so far. */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM, then the exit code (SIGKILL if it has not exited within 30 s). */
  stop(): Promise<number | null>;
}

/**
 * The built server (`node dist/src/main.js`) as its own process on this test file's database and
 * Redis db (or the Redis emulation when the suite runs without TEST_REDIS_URL), listening on a free
 * loopback port; resolves once /ready answers 200.
 */
export async function startBuiltServer(overrides: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await findFreePort();
  const env = await testEnv({ PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...overrides });
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-process-'));
  chmodSync(cwd, 0o755);
  const spawned = run(process.execPath, [path.join(repoRoot, 'dist/src/main.js')], {
    cwd,
    env: Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined)),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForOk(`${url}/ready`, spawned, 60_000);
  } catch (error) {
    spawned.child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    port,
    spawned,
    logLines: () =>
      spawned
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: async () => {
      if (spawned.child.exitCode !== null || spawned.child.signalCode !== null) return spawned.exit;
      spawned.child.kill('SIGTERM');
      const killer = setTimeout(() => spawned.child.kill('SIGKILL'), 30_000);
      try {
        return await spawned.exit;
      } finally {
        clearTimeout(killer);
      }
    },
  };
}

export interface HttpRequest {
  method: string;
  /** Path and query, sent as written. */
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer;
}

export interface HttpResponse {
  status: number;
  contentType: string;
  body: string;
}

/** One request over real HTTP; the body is read as text whatever its type. */
export async function send(base: string, request: HttpRequest): Promise<HttpResponse> {
  const response = await fetch(`${base}${request.url}`, {
    method: request.method,
    headers: request.headers ?? {},
    redirect: 'manual',
    ...(request.payload === undefined ? {} : { body: request.payload }),
  });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', body: await response.text() };
}

/** Runs `task` over `items` with at most `limit` in flight, results in the items' order. */
export async function inParallel<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) results[index] = await task(items[index]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface RawRequest extends HttpRequest {
  /** Sent as Content-Length instead of the payload's real length. */
  declaredLength?: number;
  /** Sent after the headers as is, with no Content-Length (for a Transfer-Encoding of the test's own). */
  rawBody?: string;
}

/**
 * One request written on a bare socket (`Connection: close`), for framing fetch refuses to send.
 * `halfClose` ends the sending side after the last byte, as a client that gives up. Resolves with
 * the status of the first response, or null when the server closed without answering or had not
 * closed within `timeoutMs` (then the socket is destroyed).
 */
export async function sendRaw(port: number, request: RawRequest, options: { halfClose: boolean; timeoutMs: number }): Promise<number | null> {
  const payload = Buffer.from(request.payload ?? '');
  const headers = Object.entries(request.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`);
  if (request.rawBody === undefined) headers.push(`content-length: ${request.declaredLength ?? payload.length}\r\n`);
  const head = `${request.method} ${request.url} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: close\r\n${headers.join('')}\r\n`;
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(Buffer.concat([Buffer.from(head), request.rawBody === undefined ? payload : Buffer.from(request.rawBody)]));
  if (options.halfClose) socket.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs)))]);
  clearTimeout(timer);
  socket.destroy();
  return parseResponses(received)[0]?.status ?? null;
}
