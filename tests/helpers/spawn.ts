import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/** Runs a command with exactly `env` (plus PATH and HOME), collecting stdout and stderr. */
export function run(command: string, args: string[], options: { cwd: string; env: Record<string, string | undefined> }): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

/** Polls `url` until it answers 200 or the process exits. */
export async function waitForOk(url: string, spawned: Spawned, timeoutMs: number): Promise<void> {
  let exited = false;
  void spawned.exit.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    const ok = await fetch(url).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 (exited: ${exited}); output:\n${spawned.output()}`);
}

/** Resolves when the process has written `text` (stdout or stderr); rejects if it exits first. */
export function waitForOutput(spawned: Spawned, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!spawned.output().includes(text)) return;
      stop();
      resolve();
    };
    const exited = () => {
      stop();
      reject(new Error(`exited before writing "${text}"; output:\n${spawned.output()}`));
    };
    const stop = () => {
      spawned.child.stdout?.off('data', check);
      spawned.child.stderr?.off('data', check);
      spawned.child.off('exit', exited);
    };
    spawned.child.stdout?.on('data', check);
    spawned.child.stderr?.on('data', check);
    spawned.child.once('exit', exited);
    check();
  });
}
