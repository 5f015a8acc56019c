import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** True when a `redis-server` binary is on PATH. */
export const redisServerAvailable = !spawnSync('redis-server', ['--version']).error;
// CI runs where Redis is installed and sets REQUIRE_TEST_TOOLS: there a missing binary fails instead of hiding the tests.
if (!redisServerAvailable && process.env.REQUIRE_TEST_TOOLS === '1') throw new Error('REQUIRE_TEST_TOOLS=1 but redis-server is not on PATH');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A private redis-server on a loopback port, which a test may stop (an outage) and start
 * again on the same port, or misconfigure, without touching the Redis other tests share.
 */
export async function startRedisServer() {
  const port = await freePort();
  const server = await runRedisServer(['--port', String(port), '--bind', '127.0.0.1']);
  return { url: `redis://127.0.0.1:${port}`, port, ...server };
}

/** A private redis-server listening only on the unix socket `socketPath` (owner-only, as a deployment would have it). */
export async function startRedisOnSocket(socketPath: string) {
  const server = await runRedisServer(['--port', '0', '--unixsocket', socketPath, '--unixsocketperm', '700']);
  return { socketPath, ...server };
}

async function runRedisServer(listen: string[]) {
  let child: ChildProcess | undefined;

  const start = async () => {
    const spawned = spawn('redis-server', [...listen, '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = spawned;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      spawned.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        // "Ready to accept connections" on a port; "ready to accept connections at <path>" on a socket only
        if (/ready to accept connections/i.test(output)) resolve();
      });
      spawned.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
    });
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };

  await start();
  return { start, stop };
}
