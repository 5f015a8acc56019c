import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, separateDatabaseUrl, type TestApp } from './helpers/app.js';
import { bearer, login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { eventually, whenJobsIdle } from './helpers/jobs.js';
import { startSmtpCapture } from './helpers/smtp.js';

let smtp: Awaited<ReturnType<typeof startSmtpCapture>>;
let t: TestApp;
let admin: string;
beforeAll(async () => {
  smtp = await startSmtpCapture();
  t = await buildTestApp({ env: { SMTP_URL: smtp.url } });
  const email = uniqueEmail('jobs-admin');
  await t.container.services.auth.ensureAdmin(email, PASSWORD);
  admin = (await login(t.app, email)).accessToken;
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});

const asAdmin = (url: string) => t.app.inject({ method: 'GET', url, headers: bearer(admin) });

describe('GET /admin/jobs', () => {
  it('counts jobs per queue and state, for admins only', async () => {
    const student = await register(t.app);
    await whenJobsIdle(t.container.jobs.queue, ['mail.send']);
    expect((await t.app.inject({ method: 'GET', url: '/admin/jobs' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/admin/jobs', headers: bearer(student.accessToken) })).statusCode).toBe(403);

    const res = await asAdmin('/admin/jobs');
    expect(res.statusCode).toBe(200);
    const queues = new Map((res.json().queues as Array<{ queue: string; counts: Record<string, number> }>).map((entry) => [entry.queue, entry.counts]));
    expect([...queues.keys()].sort()).toEqual([
      'audit.partitions',
      'auth.password-reset',
      'auth.purge-expired',
      'calls.end-stale',
      'chat.sweep',
      'http.idempotency-purge',
      'lms.delete-files',
      'lms.transcode',
      'mail.send',
      'notifications.broadcast',
      'notifications.email',
      'notifications.push',
      'notifications.react',
      'notifications.redeliver',
      'payments.sweep',
      'payments.webhooks',
    ]);
    // a scheduled kind always has its next tick waiting as a delayed job
    expect(queues.get('audit.partitions')).toMatchObject({ delayed: 1, dead: 0 });
    expect(queues.get('mail.send')).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 0, dead: 0 }); // sent mail is removed
  });
});

describe('GET /admin/jobs/:id', () => {
  it('answers 404 not_found for an unknown id', async () => {
    for (const id of ['mail.send:999999', 'no.such-queue:1', 'nonsense']) {
      const res = await asAdmin(`/admin/jobs/${id}`);
      expect(res.statusCode, id).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
  });

  it('shows a retried mail job: state, attempts and last error, never its payload (a one-time link)', async () => {
    // a mail server that refuses every recipient, on an app of its own (its mail jobs are its own):
    // for now (451) most, for good (550) the ones named gone@
    const refusing = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo: (address, _session, callback) =>
        address.address.startsWith('gone@')
          ? callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }))
          : callback(Object.assign(new Error('mailbox busy, try again later'), { responseCode: 451 })),
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const failing = await buildTestApp({
      env: { DATABASE_URL: await separateDatabaseUrl(), SMTP_URL: `smtp://127.0.0.1:${(refusing.server.address() as AddressInfo).port}` },
    });
    try {
      const secret = 'https://parley.example/reset-password?token=one-time-secret';
      const id = await failing.container.jobs.queue.enqueue('mail.send', { to: 'someone@example.com', subject: 'Reset', text: secret });
      const email = uniqueEmail('failing-admin');
      await failing.container.services.auth.ensureAdmin(email, PASSWORD);
      const token = (await login(failing.app, email)).accessToken;
      const read = async () => (await failing.app.inject({ method: 'GET', url: `/admin/jobs/${id}`, headers: bearer(token) })).json();
      const job = await eventually(read, (body) => body.state === 'delayed' && body.attempts >= 1);
      expect(job).toMatchObject({ id, name: 'mail.send', state: 'delayed', maxAttempts: 6, finishedAt: null });
      expect(job.lastError).toMatch(/451/);
      expect(JSON.stringify(job)).not.toContain('one-time-secret');
      expect(Object.keys(job).sort()).toEqual([
        'attempts',
        'createdAt',
        'finishedAt',
        'id',
        'lastError',
        'maxAttempts',
        'name',
        'progress',
        'startedAt',
        'state',
      ]);

      // refused for good: dead at once, its other attempts unused
      const gone = await failing.container.jobs.queue.enqueue('mail.send', { to: 'gone@example.com', subject: 'Reset', text: secret });
      const dead = await eventually(
        async () => (await failing.app.inject({ method: 'GET', url: `/admin/jobs/${gone}`, headers: bearer(token) })).json(),
        (body) => body.state === 'dead',
      );
      expect(dead).toMatchObject({ attempts: 1, maxAttempts: 6, lastError: expect.stringMatching(/550/) });

      const metrics = (await failing.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/job_failures_total\{job="mail.send",final="false"\} [1-9]/);
      expect(metrics).toMatch(/job_queue_depth\{queue="mail.send",state="delayed"\} 1/);
      expect(metrics).toMatch(/job_duration_seconds_count\{job="mail.send",outcome="failed"\} [1-9]/);
    } finally {
      await failing.close();
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });
});

describe('background work', () => {
  it('sends every e-mail through the queue (a request never waits on SMTP)', async () => {
    const account = await register(t.app);
    expect((await smtp.nextMail(account.email)).raw).toContain('Subject: Confirm your e-mail for Parley');
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/job_duration_seconds_count\{job="mail.send",outcome="completed"\} [1-9]/);
  });

  it('purges expired sessions, refresh tokens, reset and verification links, and keeps the live ones', async () => {
    const expired = await register(t.app);
    const live = await register(t.app);
    const db = t.container.db;
    const past = new Date(Date.now() - 60_000);
    await db.query('UPDATE device_sessions SET expires_at = $2 FROM users WHERE users.id = device_sessions.user_id AND users.email = $1', [
      expired.email,
      past,
    ]);
    await db.query('UPDATE refresh_tokens SET expires_at = $2 FROM users WHERE users.id = refresh_tokens.user_id AND users.email = $1', [expired.email, past]);
    await db.query('UPDATE email_verification_tokens SET expires_at = $2 FROM users WHERE users.id = email_verification_tokens.user_id AND users.email = $1', [
      expired.email,
      past,
    ]);
    const rows = async (email: string) =>
      (
        await db.query(
          `SELECT (SELECT count(*)::int FROM device_sessions s WHERE s.user_id = u.id) AS sessions,
                  (SELECT count(*)::int FROM refresh_tokens r WHERE r.user_id = u.id) AS refresh,
                  (SELECT count(*)::int FROM email_verification_tokens v WHERE v.user_id = u.id) AS verification
             FROM users u WHERE u.email = $1`,
          [email],
        )
      )[0];
    expect(await rows(expired.email)).toEqual({ sessions: 1, refresh: 1, verification: 1 });

    const id = await t.container.jobs.queue.enqueue('auth.purge-expired', {});
    await eventually(
      () => t.container.jobs.queue.get(id),
      (job) => job?.state === 'completed',
    );
    expect(await rows(expired.email)).toEqual({ sessions: 0, refresh: 0, verification: 0 });
    expect(await rows(live.email)).toEqual({ sessions: 1, refresh: 1, verification: 1 });
  });
});

describe('WORKERS=off', () => {
  it('queues the e-mail of a request and sends nothing itself; a worker on the same database sends it', async () => {
    const offMail = await startSmtpCapture();
    const workerMail = await startSmtpCapture();
    const database = await separateDatabaseUrl();
    const api = await buildTestApp({ env: { DATABASE_URL: database, SMTP_URL: offMail.url, WORKERS: 'off' } });
    try {
      const account = await register(api.app);
      const [mailQueue] = (await api.container.jobs.queue.stats()).filter((entry) => entry.queue === 'mail.send');
      expect(mailQueue!.counts.waiting).toBe(1);

      const worker = await buildTestApp({ env: { DATABASE_URL: database, SMTP_URL: workerMail.url } });
      try {
        expect((await workerMail.nextMail(account.email)).raw).toContain('Subject: Confirm your e-mail for Parley');
        await whenJobsIdle(api.container.jobs.queue, ['mail.send']);
        expect(offMail.messages).toHaveLength(0);
      } finally {
        await worker.close();
      }
    } finally {
      await api.close();
      await offMail.close();
      await workerMail.close();
    }
  });
});
