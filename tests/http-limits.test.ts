import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';

/**
 * Slow and oversized requests on raw sockets, as a hostile client sends them: the server must
 * answer and close the connection itself, without waiting for (or reading) the rest.
 */
let t: TestApp;
let port: number;
let token: string;

const BODY_LIMIT = 2048;
const AVATAR_LIMIT = 4096;

beforeAll(async () => {
  t = await buildTestApp({
    env: { HTTP_REQUEST_TIMEOUT: '1s', HTTP_HEADERS_TIMEOUT: '500ms', BODY_LIMIT_BYTES: String(BODY_LIMIT), AVATAR_MAX_BYTES: String(AVATAR_LIMIT) },
  });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as AddressInfo).port;
  token = (await register(t.app)).accessToken;
});
afterAll(() => t.close());

interface Raw {
  socket: net.Socket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

async function connect(): Promise<Raw> {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  // the server may reset a connection it stopped reading: what it answered first is what counts
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, closed };
}

/** The server's answer, once it closed the connection; fails if it keeps the connection open for 10 s. */
async function answer(raw: Raw): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the server kept the connection open')), 10_000);
  });
  try {
    return await Promise.race([raw.closed, stuck]);
  } finally {
    clearTimeout(timer);
    raw.socket.destroy();
  }
}

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;

describe('request timeouts', () => {
  it('answers 408 and closes a connection whose body trickles in slower than HTTP_REQUEST_TIMEOUT', async () => {
    const raw = await connect();
    raw.socket.write(head(['POST /auth/login HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Content-Length: 100']));
    raw.socket.write('{');
    expect(await answer(raw)).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers 408 and closes a connection whose headers never end', async () => {
    const raw = await connect();
    raw.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    expect(await answer(raw)).toMatch(/^HTTP\/1\.1 408 /);
  });
});

describe('oversized bodies', () => {
  it('refuses a declared Content-Length over BODY_LIMIT_BYTES before reading the body, and closes the connection', async () => {
    const raw = await connect();
    raw.socket.write(head(['POST /auth/login HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Content-Length: 1000000000']));
    const response = await answer(raw);
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(response).toContain('"payload_too_large"');
  });

  it('cuts a chunked body as soon as it passes BODY_LIMIT_BYTES', async () => {
    const raw = await connect();
    raw.socket.write(head(['POST /auth/login HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Transfer-Encoding: chunked']));
    const chunk = `{"email":"${'a'.repeat(BODY_LIMIT)}`;
    raw.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    // and never the terminating chunk: the server must not wait for it
    expect(await answer(raw)).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('refuses an avatar upload whose declared Content-Length is over AVATAR_MAX_BYTES before reading it', async () => {
    const raw = await connect();
    raw.socket.write(
      head([
        'POST /users/me/avatar HTTP/1.1',
        'Host: 127.0.0.1',
        `Authorization: Bearer ${token}`,
        'Content-Type: multipart/form-data; boundary=xyz',
        'Content-Length: 1000000000',
      ]),
    );
    const response = await answer(raw);
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(response).toContain('"payload_too_large"');
  });

  it('cuts a chunked avatar upload as soon as the file passes AVATAR_MAX_BYTES', async () => {
    const raw = await connect();
    raw.socket.write(
      head([
        'POST /users/me/avatar HTTP/1.1',
        'Host: 127.0.0.1',
        `Authorization: Bearer ${token}`,
        'Content-Type: multipart/form-data; boundary=xyz',
        'Transfer-Encoding: chunked',
      ]),
    );
    const chunk = `--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n${'a'.repeat(AVATAR_LIMIT + 1)}`;
    raw.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    expect(await answer(raw)).toMatch(/^HTTP\/1\.1 413 /);
  });
});

describe('ordinary errors', () => {
  it('keep the connection alive when the request had no body to read', async () => {
    for (const [url, status] of [
      ['/no/such/route', 404],
      ['/users/me', 401],
      ['/admin/users?limit=0', 401],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${port}${url}`);
      expect(res.status).toBe(status);
      expect(res.headers.get('connection')).toBe('keep-alive');
    }
  });

  it('read and discard a body within the limit that was refused before it was read, so the client gets the answer', async () => {
    const body = JSON.stringify({ key: 'x'.repeat(BODY_LIMIT - 100) });
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const res = await fetch(`http://127.0.0.1:${port}/no/such/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(404);
      expect(res.headers.get('connection')).toBe('keep-alive');
    }
  });
});
