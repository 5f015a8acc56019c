import { spawn, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export interface LoadOptions {
  url: string;
  connections?: number;
  durationSeconds?: number;
  headers?: Record<string, string>;
}

/** Drives `url` with autocannon after a short warm-up and returns throughput and latency. */
export async function load({ url, connections = 32, durationSeconds = 10, headers = {} }: LoadOptions): Promise<LoadResult> {
  await autocannon({ url, connections, duration: 2, headers });
  const result = await autocannon({ url, connections, duration: durationSeconds, headers });
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

export interface Server {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a server process and waits until `readyUrl` answers 200. */
export async function startServer(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string | undefined>; readyUrl: string },
): Promise<Server> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${command} exited early: ${stderr}`);
    const ok = await fetch(options.readyUrl).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) {
      return {
        child,
        stop: () =>
          new Promise((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`${options.readyUrl} never became ready: ${stderr}`);
}
