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
  method?: 'GET' | 'POST';
  body?: string;
  connections?: number;
  durationSeconds?: number;
  /** Fixed total request rate (latency measurement) instead of as fast as possible. */
  overallRate?: number;
  headers?: Record<string, string>;
  warmup?: boolean;
}

/** Drives `url` with autocannon (after a short warm-up) and returns throughput and latency. */
export async function load({
  url,
  method = 'GET',
  body,
  connections = 32,
  durationSeconds = 10,
  overallRate,
  headers = {},
  warmup = true,
}: LoadOptions): Promise<LoadResult> {
  const options = { url, method, body, connections, headers, ...(overallRate ? { overallRate } : {}) };
  if (warmup) await autocannon({ ...options, duration: 2 });
  const result = await autocannon({ ...options, duration: durationSeconds });
  return {
    requestsPerSecond: Math.round(result.requests.average * 10) / 10,
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

export function best(results: LoadResult[]): LoadResult {
  return results.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
}
