import type { IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { App } from '../src/app.js';
import { shutdown } from '../src/lifecycle.js';
import { buildTestApp } from './helpers/app.js';
import { register } from './helpers/auth.js';
import { openRawConnection, parseResponses } from './helpers/raw-http.js';
import { stays } from './helpers/wait.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function startWithSlowRoute(extend?: (app: App) => void) {
  const entered = deferred();
  const release = deferred();
  const t = await buildTestApp({
    extend: (app) => {
      extend?.(app);
      app.get('/test/slow', async () => {
        entered.resolve();
        await release.promise;
        return { finished: true };
      });
    },
  });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = t.app.server.address() as AddressInfo;
  return { t, entered, release, base: `http://127.0.0.1:${port}` };
}

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, refuses new connections, then closes everything', async () => {
    const { t, entered, release, base } = await startWithSlowRoute();
    const inFlight = fetch(`${base}/test/slow`);
    await entered.promise;

    const stopping = shutdown(t.app, t.container, 5_000);
    await expect(fetch(`${base}/health`)).rejects.toThrow();

    release.resolve();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ finished: true });
    expect(await stopping).toBe(true);
    expect(t.container.db.isInitialized).toBe(false);
  });

  it('answers 503 shutting_down to a request that arrives on an open connection while draining', async () => {
    const { t, entered, release, base } = await startWithSlowRoute();
    const connection = await openRawConnection(Number(new URL(base).port));
    connection.write('GET /test/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await entered.promise;

    const stopping = shutdown(t.app, t.container, 5_000);
    // pipelined behind the slow request, on the connection opened before the stop; the slow
    // one finishes once the server has read it (bytes still in flight when a connection falls
    // idle are lost with it, as on any server that closes keep-alive connections)
    const pipelinedRead = new Promise<void>((resolve) => t.app.server.on('request', (request: IncomingMessage) => request.url === '/health' && resolve()));
    connection.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await pipelinedRead;
    release.resolve();
    const [slow, late, ...more] = parseResponses(await connection.closed);
    expect(slow?.status).toBe(200);
    expect(late?.status).toBe(503);
    expect(late?.headers).toMatchObject({ connection: 'close', 'retry-after': '1' });
    expect(JSON.parse(late?.body ?? '{}')).toEqual({ error: { code: 'shutting_down', message: expect.any(String) } });
    expect(more).toEqual([]);
    expect(await stopping).toBe(true);
  });

  it('lets a browser read the 503 shutting_down: it carries the CORS headers of the allowed origin', async () => {
    const { t, entered, release, base } = await startWithSlowRoute();
    const connection = await openRawConnection(Number(new URL(base).port));
    connection.write('GET /test/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await entered.promise;
    const stopping = shutdown(t.app, t.container, 5_000);
    const pipelinedRead = new Promise<void>((resolve) => t.app.server.on('request', (request: IncomingMessage) => request.url === '/auth/me' && resolve()));
    connection.write('GET /auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:3000\r\n\r\n');
    await pipelinedRead;
    release.resolve();
    const [, late] = parseResponses(await connection.closed);
    expect(late?.status).toBe(503);
    expect(late?.headers).toMatchObject({
      'access-control-allow-origin': 'http://localhost:3000',
      'access-control-expose-headers': expect.stringContaining('Retry-After'),
    });
    expect(await stopping).toBe(true);
  });

  it('runs the preClose hooks (sockets, matchmaking) while the database is still open', async () => {
    let databaseAnswered: boolean | undefined;
    const t = await buildTestApp({
      extend: (app) =>
        app.addHook('preClose', async () => {
          databaseAnswered = await t.container.db.query('SELECT 1').then(
            () => true,
            () => false,
          );
        }),
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    expect(await shutdown(t.app, t.container, 5_000)).toBe(true);
    expect(databaseAnswered).toBe(true);
    expect(t.container.db.isInitialized).toBe(false);
  });

  it('does not wait for connections that never sent a request (a browser preconnect, a spare keep-alive socket)', async () => {
    const t = await buildTestApp({ env: { WORKERS: 'off' } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const silent = await openRawConnection(port);
    // an answered request's connection, now idle, goes too
    const used = await openRawConnection(port);
    used.write('GET /health HTTP/1.1\r\nHost: parley.test\r\n\r\n');
    await used.until('"status":"ok"');
    expect(await shutdown(t.app, t.container, 3_000)).toBe(true);
    expect(await silent.closed).toBe('');
    await used.closed;
  });

  it('cuts requests that outlive the bound and reports an unclean stop', async () => {
    const { t, entered, release, base } = await startWithSlowRoute();
    const inFlight = fetch(`${base}/test/slow`).then(
      () => 'answered',
      () => 'cut',
    );
    await entered.promise;
    expect(await shutdown(t.app, t.container, 200)).toBe(false);
    expect(await inFlight).toBe('cut');
    release.resolve();
  });

  it('after cutting requests that outlive the bound, still lets the onClose hooks finish before the database closes', async () => {
    const inClose = deferred();
    const finishClose = deferred();
    let databaseAnswered: boolean | undefined;
    const { t, entered, release, base } = await startWithSlowRoute((app) =>
      app.addHook('onClose', async () => {
        inClose.resolve();
        await finishClose.promise;
        databaseAnswered = await t.container.db.query('SELECT 1').then(
          () => true,
          () => false,
        );
      }),
    );
    const inFlight = fetch(`${base}/test/slow`).catch(() => undefined);
    await entered.promise;
    const stopping = shutdown(t.app, t.container, 200);
    await inClose.promise;
    // the container must not close while the hook runs: watch it for 2 s (the shutdown finishing meanwhile fails too)
    const closedMeanwhile = await Promise.race([
      stopping.then(() => true),
      stays(() => t.container.db.isInitialized, { forMs: 2_000, message: 'the database stays open while an onClose hook runs' }).then(
        () => false,
        () => true,
      ),
    ]);
    finishClose.resolve();
    expect(await stopping).toBe(false);
    expect(closedMeanwhile).toBe(false);
    expect(databaseAnswered).toBe(true);
    release.resolve();
    await inFlight;
  });

  it('does not wait past its deadline for a mail server that never answers', { timeout: 20_000 }, async () => {
    // accepts SMTP connections and never greets (nodemailer would wait 30 s for the greeting)
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const t = await buildTestApp({ env: { SMTP_URL: `smtp://127.0.0.1:${port}` } });
      const account = await register(t.app);
      expect((await t.app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: account.email } })).statusCode).toBe(202);
      await expect.poll(() => held.length).toBe(2); // the verification and the reset link, both stuck
      expect(await shutdown(t.app, t.container, 300)).toBe(false);
      expect(t.container.db.isInitialized).toBe(false);
      expect(held.every((socket) => !socket.destroyed)).toBe(true); // abandoned, not finished
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
