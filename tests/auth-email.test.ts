import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, capturingLogger, separateDatabaseUrl, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { startSmtpCapture, tokenFrom } from './helpers/smtp.js';
import { whenJobsIdle } from './helpers/jobs.js';

const clock = manualClock();
let smtp: Awaited<ReturnType<typeof startSmtpCapture>>;
let t: TestApp;
beforeAll(async () => {
  smtp = await startSmtpCapture();
  t = await buildTestApp({ clock, env: { SMTP_URL: smtp.url, APP_URL: 'https://parley.example' } });
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});
beforeEach(() => truncateAll(t));

// every e-mail goes through the queue: a reset request's job, then the mail's; the notice of a
// changed password is a notification (its event's job, then its e-mail's)
const mailSettled = () => whenJobsIdle(t.container.jobs.queue, ['auth.password-reset', 'mail.send', 'notifications.react', 'notifications.email']);
const forgot = (email: string) => t.app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email } });
const reset = (token: string, newPassword = 'a brand new passphrase') =>
  t.app.inject({ method: 'POST', url: '/auth/reset-password', payload: { token, newPassword } });

async function resetTokenFor(email: string): Promise<string> {
  expect((await smtp.nextMail(email)).raw).toContain('Subject: Confirm your e-mail for Parley'); // sent at registration
  expect((await forgot(email)).statusCode).toBe(202);
  // a sign-in from a new device may have written meanwhile
  return tokenFrom(await smtp.nextMail(email, 'Reset your Parley password'));
}

describe('password reset', () => {
  it('answers 202 the same way for an unknown address, and sends nothing', async () => {
    const res = await forgot(uniqueEmail('nobody'));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: true });
    const [{ count }] = await t.container.db.query('SELECT count(*)::int AS count FROM password_reset_tokens');
    expect(count).toBe(0);
  });

  it('e-mails a link through SMTP; the token sets a new password and signs every device out', async () => {
    const account = await register(t.app);
    const other = await login(t.app, account.email);
    const token = await resetTokenFor(account.email);

    const [stored] = await t.container.db.query('SELECT token_hash FROM password_reset_tokens');
    expect(stored.token_hash).not.toBe(token);
    expect((await reset(token)).statusCode).toBe(204);

    for (const pair of [account, other]) {
      expect((await injectAs(t.app, pair, { method: 'GET', url: '/auth/me' })).json().error.code).toBe('session_revoked');
      expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })).statusCode).toBe(401);
    }
    const oldPassword = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: account.email, password: PASSWORD, deviceId: 'd', platform: 'web' },
    });
    expect(oldPassword.statusCode).toBe(401);
    expect((await login(t.app, account.email, { password: 'a brand new passphrase' })).user.id).toBe(account.user.id);
  });

  it('tells the account by e-mail that its password was changed', async () => {
    const account = await register(t.app);
    const token = await resetTokenFor(account.email);
    expect((await reset(token)).statusCode).toBe(204);
    const notice = await smtp.nextMail(account.email);
    expect(notice.raw).toContain('Subject: Your Parley password was changed');
    expect(notice.raw).not.toMatch(/token=/);
  });

  it('sends one account at most 3 reset links an hour, whatever the IP asking', async () => {
    const account = await register(t.app);
    await smtp.nextMail(account.email); // the registration e-mail
    for (const ip of ['198.51.100.10', '198.51.100.11', '198.51.100.12', '198.51.100.13']) {
      const res = await t.app.inject({ method: 'POST', url: '/auth/forgot-password', remoteAddress: ip, payload: { email: account.email } });
      expect(res.statusCode).toBe(202);
    }
    await mailSettled();
    expect(smtp.messages.filter((mail) => mail.to.includes(account.email))).toHaveLength(3);
    const [{ count }] = await t.container.db.query('SELECT count(*)::int AS count FROM password_reset_tokens');
    expect(count).toBe(3);
    // an hour later the account may ask again
    clock.advance(60 * 60_000 + 1_000);
    try {
      await forgot(account.email);
      await mailSettled();
      expect(smtp.messages.filter((mail) => mail.to.includes(account.email))).toHaveLength(4);
    } finally {
      clock.advance(-(60 * 60_000 + 1_000));
    }
  });

  it('queues the notice of a changed password and the verification link, and sends both', async () => {
    const account = await register(t.app);
    const token = await resetTokenFor(account.email);
    expect((await reset(token)).statusCode).toBe(204);
    await mailSettled();
    // already received: no waiting for it here
    expect(smtp.messages.filter((mail) => mail.to.includes(account.email)).map((mail) => /Subject: (.*)/.exec(mail.raw)?.[1])).toEqual([
      'Your Parley password was changed',
    ]);
    const fresh = await register(t.app);
    await mailSettled();
    expect(smtp.messages.some((mail) => mail.to.includes(fresh.email))).toBe(true);
  });

  it('puts the link on APP_URL', async () => {
    const account = await register(t.app);
    await smtp.nextMail(account.email);
    await forgot(account.email);
    const mail = await smtp.nextMail(account.email);
    expect(mail.raw.replace(/=\r?\n/g, '')).toMatch(/https:\/\/parley\.example\/reset-password\?token=3D[A-Za-z0-9_-]{43}/);
  });

  it('refuses a token used once already', async () => {
    const account = await register(t.app);
    const token = await resetTokenFor(account.email);
    expect((await reset(token)).statusCode).toBe(204);
    const again = await reset(token, 'yet another passphrase');
    expect(again.statusCode).toBe(400);
    expect(again.json().error.code).toBe('invalid_reset_token');
  });

  it('refuses a token after its hour', async () => {
    const account = await register(t.app);
    const token = await resetTokenFor(account.email);
    clock.advance(61 * 60_000);
    const res = await reset(token);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_reset_token');
  });

  it('lets exactly one of two concurrent resets with the same token through', async () => {
    const account = await register(t.app);
    const token = await resetTokenFor(account.email);
    const results = await Promise.all([reset(token, 'first new passphrase'), reset(token, 'second new passphrase')]);
    expect(results.map((res) => res.statusCode).sort()).toEqual([204, 400]);
  });
});

describe('e-mail verification', () => {
  it('confirms the address with the token from the registration e-mail', async () => {
    const account = await register(t.app);
    const token = tokenFrom(await smtp.nextMail(account.email));
    expect((await t.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } })).statusCode).toBe(204);
    const me = (await injectAs(t.app, account, { method: 'GET', url: '/auth/me' })).json();
    expect(me.isVerified).toBe(true);
    const again = await t.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } });
    expect(again.json().error.code).toBe('invalid_verification_token');
    const resend = await injectAs(t.app, account, { method: 'POST', url: '/auth/verify-email/resend' });
    expect(resend.statusCode).toBe(409);
    expect(resend.json().error.code).toBe('already_verified');
  });

  it('sends a fresh link on request', async () => {
    const account = await register(t.app);
    await smtp.nextMail(account.email);
    expect((await injectAs(t.app, account, { method: 'POST', url: '/auth/verify-email/resend' })).statusCode).toBe(202);
    const token = tokenFrom(await smtp.nextMail(account.email));
    expect((await t.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } })).statusCode).toBe(204);
  });
});

// Each app on a database of its own: the file's app (SMTP) would otherwise take their mail jobs.
describe('other mail transports', () => {
  it('sends through the Resend HTTP API when RESEND_API_KEY is set', async () => {
    const received: Array<{ authorization?: string; body: Record<string, unknown> }> = [];
    const resend = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (request.method === 'POST' && request.url === '/emails') received.push({ authorization: request.headers.authorization, body: JSON.parse(body) });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"email_1"}');
      });
    });
    await new Promise<void>((resolve) => resend.listen(0, '127.0.0.1', resolve));
    const app = await buildTestApp({
      env: {
        DATABASE_URL: await separateDatabaseUrl(),
        RESEND_API_KEY: 're_test_key',
        RESEND_API_URL: `http://127.0.0.1:${(resend.address() as AddressInfo).port}`,
      },
    });
    try {
      const account = await register(app.app);
      await expect.poll(() => received.length).toBe(1);
      expect(received[0]).toMatchObject({ authorization: 'Bearer re_test_key', body: { to: [account.email], subject: 'Confirm your e-mail for Parley' } });
      expect(String(received[0]!.body.text)).toMatch(/verify-email\?token=[A-Za-z0-9_-]{43}/);
    } finally {
      await app.close();
      resend.close();
    }
  });

  it('writes the message to the log when no transport is configured', async () => {
    const { logger, lines } = capturingLogger();
    const app = await buildTestApp({ logger, env: { DATABASE_URL: await separateDatabaseUrl() } });
    try {
      const account = await register(app.app);
      await expect.poll(() => lines.find((line) => line.msg?.toString().startsWith('e-mail (not sent'))).toBeDefined();
      const line = lines.find((entry) => String(entry.msg).startsWith('e-mail (not sent'))!;
      expect(line.mail).toMatchObject({ to: account.email });
      // the access log of the same request never carries the password
      expect(JSON.stringify(lines)).not.toContain(PASSWORD);
    } finally {
      await app.close();
    }
  });
});
