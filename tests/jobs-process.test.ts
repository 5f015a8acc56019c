import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { mailJobs } from '../src/infra/mail-queue.js';
import { testEnv } from './helpers/app.js';
import { eventually, startJobs, testJobsBackend, whenJobsIdle } from './helpers/jobs.js';
import { startSmtpCapture } from './helpers/smtp.js';
import { repoRoot, run, type Spawned } from './helpers/spawn.js';

const children: Spawned[] = [];
afterAll(() => {
  for (const child of children) if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
});

/** `npm run worker`, built: a process that runs the jobs and serves no HTTP. */
async function startWorkerProcess(env: Record<string, string>): Promise<Spawned> {
  const all = await testEnv({ LOG_LEVEL: 'info', JOBS_STALLED_TIMEOUT: '1500ms', ...env });
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'parley-worker-'));
  const spawned = run(process.execPath, [path.join(repoRoot, 'dist/src/worker.js')], {
    cwd,
    env: Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined)),
  });
  children.push(spawned);
  return spawned;
}

it('a mail job cut by kill -9 of the worker process runs again, once, in the next one', { timeout: 90_000 }, async () => {
  // a mail server that accepts connections and never greets: the job hangs in the first worker
  const held: Socket[] = [];
  const silent = createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const smtp = await startSmtpCapture();
  const producer = await startJobs(await testJobsBackend('postgres'), mailJobs({ kind: 'log', send: async () => undefined }), { workers: false });
  try {
    const to = 'survivor@example.com';
    const id = await producer.queue.enqueue('mail.send', { to, subject: 'Survives a crash', text: 'Sent once.' });

    const first = await startWorkerProcess({ SMTP_URL: `smtp://127.0.0.1:${(silent.address() as AddressInfo).port}` });
    await eventually(
      () => held.length,
      (count) => count >= 1,
      60_000,
    );
    expect((await producer.queue.get(id))?.state).toBe('active');
    first.child.kill('SIGKILL');
    expect(await first.exit).toBeNull();

    const second = await startWorkerProcess({ SMTP_URL: smtp.url });
    const mail = await smtp.nextMail(to);
    expect(mail.raw).toContain('Subject: Survives a crash');
    await whenJobsIdle(producer.queue, ['mail.send'], 30_000);
    expect(smtp.messages.filter((message) => message.to.includes(to))).toHaveLength(0); // the one taken above was the only one
    expect(await producer.queue.get(id)).toBeNull(); // removed once sent
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
  } finally {
    await producer.close();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await smtp.close();
  }
});

it('refuses to start a worker without DATABASE_URL, in one line', async () => {
  const spawned = await startWorkerProcess({ DATABASE_URL: '' });
  expect(await spawned.exit).toBe(1);
  expect(spawned.output().trim()).toBe('parley worker: Invalid configuration: a worker process needs DATABASE_URL (the database the API processes use)');
});

it('refuses JOBS_BACKEND=redis without REDIS_URL, in one line', async () => {
  const spawned = await startWorkerProcess({ JOBS_BACKEND: 'redis', REDIS_URL: '' });
  expect(await spawned.exit).toBe(1);
  expect(spawned.output().trim()).toBe(
    'parley worker: Invalid configuration: JOBS_BACKEND=redis needs REDIS_URL or REDIS_SOCKET_PATH (the in-process Redis emulation cannot run the job queue)',
  );
});
