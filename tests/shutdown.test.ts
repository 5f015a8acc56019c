import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { shutdown } from '../src/lifecycle.js';
import { buildTestApp } from './helpers/app.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function startWithSlowRoute() {
  const entered = deferred();
  const release = deferred();
  const t = await buildTestApp({
    extend: (app) => {
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
});
