import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { buildTestApp, testEnv, type TestApp } from './helpers/app.js';
import { client, listen, readyUser, type Client } from './helpers/realtime.js';
import { repoRoot, run, waitForOk, type Spawned } from './helpers/spawn.js';

// Instances that die or stop, next to a live one on the same Redis: the suite's real one.
const realRedis = Boolean(inject('redisUrl'));
const prefix = `parley-instances-${process.pid}`;

describe.runIf(realRedis)('instances that die or stop (two instances on one Redis)', () => {
  let live: TestApp;
  let liveUrl: string;
  const open: Client[] = [];
  beforeAll(async () => {
    live = await buildTestApp({ env: { REALTIME_CHANNEL_PREFIX: prefix } });
    liveUrl = await listen(live.app);
  }, 180_000);
  afterAll(async () => {
    for (const c of open) c.close();
    await live.close();
  });

  const connected = async (url: string, token: string) => {
    const c = await client(url, token);
    open.push(c);
    return c;
  };
  const redis = () => live.container.redis.client;
  const searching = async (c: Client, level: string) => {
    c.socket.emit('find_partner', { level });
    await c.next('searching');
  };

  /** The built server as its own process, on the live instance's database, Redis and keys. */
  async function spawnInstance(): Promise<{ server: Spawned; url: string }> {
    const port = await findFreePort();
    const env = await testEnv({ PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', REALTIME_CHANNEL_PREFIX: prefix, MATCH_INSTANCE_TTL: '1s' });
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-instance-'));
    chmodSync(cwd, 0o755);
    const server = run(process.execPath, [path.join(repoRoot, 'dist/src/main.js')], {
      cwd,
      env: Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined)),
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForOk(`${url}/ready`, server, 60_000);
    return { server, url };
  }

  it('stops matching the searchers of an instance killed with SIGKILL within seconds; its live searchers were matched', async () => {
    const { server, url } = await spawnInstance();
    try {
      // alive: a searcher over there is matched with a seeker here
      const there = await connected(url, (await readyUser(live.app, 'advanced')).accessToken);
      await searching(there, 'advanced');
      const seeker = await connected(liveUrl, (await readyUser(live.app, 'advanced')).accessToken);
      expect(await seeker.socket.emitWithAck('find_partner', { level: 'advanced' })).toEqual({ status: 'matched' });
      await there.next('match_found');

      const ghost = await readyUser(live.app, 'advanced');
      await searching(await connected(url, ghost.accessToken), 'advanced');
      const instanceId = await redis().hget('match:searching-on', ghost.user.id);
      server.child.kill('SIGKILL');
      await server.exit;
      // its heartbeat (MATCH_INSTANCE_TTL 1 s) runs out; nothing else cleaned up after it
      await expect.poll(() => redis().exists(`match:instance:${instanceId}`), { timeout: 15_000, interval: 100 }).toBe(0);
      expect(await redis().lrange('match:queue:advanced', 0, -1)).toContain(ghost.user.id);

      const next = await connected(liveUrl, (await readyUser(live.app, 'advanced')).accessToken);
      expect(await next.socket.emitWithAck('find_partner', { level: 'advanced' })).toEqual({ status: 'queued' });
      expect(await redis().lrange('match:queue:advanced', 0, -1)).not.toContain(ghost.user.id);
      expect(await redis().exists(`match:searching:${ghost.user.id}`)).toBe(0);
      expect(await next.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
    } finally {
      server.child.kill('SIGKILL');
    }
  }, 120_000);

  it('ends the searches of an instance that stops, at once', async () => {
    const stopping = await buildTestApp({ env: { REALTIME_CHANNEL_PREFIX: prefix } });
    const stoppingUrl = await listen(stopping.app);
    const leaving = await readyUser(live.app, 'beginner');
    await searching(await connected(stoppingUrl, leaving.accessToken), 'beginner');
    await stopping.close();

    expect(await redis().exists(`match:searching:${leaving.user.id}`)).toBe(0);
    expect(await redis().lrange('match:queue:beginner', 0, -1)).not.toContain(leaving.user.id);
    const next = await connected(liveUrl, (await readyUser(live.app, 'beginner')).accessToken);
    expect(await next.socket.emitWithAck('find_partner', { level: 'beginner' })).toEqual({ status: 'queued' });
    expect(await next.socket.emitWithAck('cancel_search')).toEqual({ cancelled: true });
  });
});
