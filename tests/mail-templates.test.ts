import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/infra/logger.js';
import { renderMail, MAIL_TEMPLATE_NAMES, type MailTemplateName, type MailTemplateVars } from '../src/infra/mail-templates.js';
import { PermanentJobError, RetryLaterError } from '../src/infra/jobs.js';
import { rethrowForJobs } from '../src/infra/mail-queue.js';
import { createLogMailer, createResendMailer, createSmtpMailer, MailRefusedError } from '../src/infra/mailer.js';
import { mailPreviewRoutes } from '../src/modules/notifications/mail-preview.js';
import { registerErrorHandling } from '../src/shared/error-handler.js';
import { serializerCompiler } from '../src/shared/serializer.js';
import { startSmtpCapture, type CapturedMail } from './helpers/smtp.js';

const FROM = 'Parley <no-reply@parley.example>';
const HOSTILE = `<script>alert("x")</script> & 'quoted'`;
const HOSTILE_ESCAPED = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;';
const PAID_AT = new Date('2026-03-14T09:26:53Z');

// --- a small MIME reader: enough for what nodemailer writes (one level of multipart) ---

interface MimeEntity {
  headers: Map<string, string>;
  body: string;
}

function decodeQuotedPrintable(encoded: string): string {
  const bytes: number[] = [];
  const text = encoded.replace(/=\r?\n/g, '');
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-F]{2}$/i.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(...Buffer.from(text[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words (=?UTF-8?Q?...?= and =?UTF-8?B?...?=), as nodemailer writes non-ASCII headers. */
function decodeHeader(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_, encoding: string, word: string) =>
      encoding.toUpperCase() === 'B' ? Buffer.from(word, 'base64').toString('utf8') : decodeQuotedPrintable(word.replace(/_/g, ' ')),
    );
}

function parseEntity(raw: string): MimeEntity {
  const split = raw.indexOf('\r\n\r\n');
  const headers = new Map<string, string>();
  for (const line of raw
    .slice(0, split)
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), decodeHeader(line.slice(colon + 1).trim()));
  }
  return { headers, body: raw.slice(split + 4) };
}

function decodeBody({ headers, body }: MimeEntity): string {
  const encoding = headers.get('content-transfer-encoding')?.toLowerCase();
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

function readMail(mail: CapturedMail) {
  const message = parseEntity(mail.raw);
  const contentType = message.headers.get('content-type') ?? '';
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  const parts = boundary
    ? message.body
        .split(`--${boundary}`)
        .slice(1, -1)
        .map((chunk) => parseEntity(chunk.replace(/^\r\n/, '').replace(/\r\n$/, '')))
    : [];
  const part = (type: string) => {
    const found = parts.find((entity) => entity.headers.get('content-type')?.startsWith(type));
    return found ? decodeBody(found) : undefined;
  };
  // SMTP carries CRLF line ends; the values were written with LF
  return { headers: message.headers, contentType, parts, text: part('text/plain')?.replace(/\r\n/g, '\n'), html: part('text/html') };
}

// --- every template, through the real SMTP mailer ---

interface Case<N extends MailTemplateName> {
  name: N;
  vars: MailTemplateVars[N];
  subject: string;
  /** Values the mail must show: as is in the text, HTML-escaped in the html. */
  shows: Array<{ text: string; html: string }>;
  /** A value that must be escaped in the html. */
  hostile?: boolean;
}

const same = (value: string) => ({ text: value, html: value });

const cases: { [N in MailTemplateName]: Case<N> } = {
  'verify-email': {
    name: 'verify-email',
    vars: { link: 'https://parley.example/verify-email?token=abc_DEF-123&lang=en', expiresInMinutes: 24 * 60 },
    subject: 'Confirm your e-mail for Parley',
    shows: [
      {
        text: 'https://parley.example/verify-email?token=abc_DEF-123&lang=en',
        html: 'href="https://parley.example/verify-email?token=abc_DEF-123&amp;lang=en"',
      },
      same('valid for 24 hours'),
    ],
  },
  'reset-password': {
    name: 'reset-password',
    vars: { link: 'http://localhost:3000/reset-password?token=xyz', expiresInMinutes: 30 },
    subject: 'Reset your Parley password',
    shows: [same('http://localhost:3000/reset-password?token=xyz'), same('valid for 30 minutes and works once')],
  },
  'password-changed': {
    name: 'password-changed',
    vars: { at: PAID_AT, timeZone: 'Asia/Tokyo', appUrl: 'https://parley.example/app' },
    subject: 'Your Parley password was changed',
    shows: [same('14 March 2026 at 18:26 GMT+9'), same('reset your password'), same('https://parley.example/app')],
  },
  'payment-receipt': {
    name: 'payment-receipt',
    vars: { description: HOSTILE, amountMinor: 123_456, currency: 'USD', orderId: 'ord_42', paidAt: PAID_AT },
    subject: 'Your Parley receipt for order ord_42',
    shows: [same('$1,234.56'), same('ord_42'), same('14 March 2026 at 09:26 UTC'), { text: HOSTILE, html: HOSTILE_ESCAPED }],
    hostile: true,
  },
  'new-sign-in': {
    name: 'new-sign-in',
    vars: { device: HOSTILE, ip: '203.0.113.7', at: PAID_AT },
    subject: 'New sign-in to your Parley account',
    shows: [same('203.0.113.7'), same('14 March 2026 at 09:26 UTC'), same('change your password'), { text: HOSTILE, html: HOSTILE_ESCAPED }],
    hostile: true,
  },
  notification: {
    name: 'notification',
    vars: { title: `Ana & Bo say "hi"`, body: `${HOSTILE}\nSecond line`, actionUrl: 'https://parley.example/app/calls?id=1&tab=notes' },
    subject: `Ana & Bo say "hi"`,
    shows: [
      { text: `Ana & Bo say "hi"`, html: 'Ana &amp; Bo say &quot;hi&quot;' },
      { text: `${HOSTILE}\nSecond line`, html: `${HOSTILE_ESCAPED}<br>Second line` },
      { text: 'https://parley.example/app/calls?id=1&tab=notes', html: 'href="https://parley.example/app/calls?id=1&amp;tab=notes"' },
    ],
    hostile: true,
  },
};

let smtp: Awaited<ReturnType<typeof startSmtpCapture>>;
beforeAll(async () => {
  smtp = await startSmtpCapture();
});
afterAll(() => smtp.close());

describe('mail templates through SMTP', () => {
  it('has a case for every template', () => {
    expect(Object.keys(cases).sort()).toEqual([...MAIL_TEMPLATE_NAMES].sort());
  });

  for (const { name, vars, subject, shows, hostile } of Object.values(cases) as Array<Case<MailTemplateName>>) {
    it(`${name}: a multipart/alternative message with the values, escaped in the html`, async () => {
      const to = `${name}@example.test`;
      const rendered = renderMail(name, vars);
      await createSmtpMailer(smtp.url, FROM).send({ to, ...rendered });
      const mail = readMail(await smtp.nextMail(to));

      expect(mail.headers.get('subject')).toBe(subject);
      expect(mail.contentType).toMatch(/^multipart\/alternative;/);
      expect(mail.parts.map((part) => part.headers.get('content-type')?.split(';')[0])).toEqual(['text/plain', 'text/html']);
      expect(mail.text).toBeDefined();
      expect(mail.html).toMatch(/^<!DOCTYPE html>/);
      for (const value of shows) {
        expect(mail.text).toContain(value.text);
        expect(mail.html).toContain(value.html);
      }
      // the text part is never HTML: nothing in it is escaped
      expect(mail.text).not.toMatch(/&(amp|lt|gt|quot|#39);/);
      expect(mail.html).toContain('Parley');
      if (hostile) {
        expect(mail.html).not.toContain('<script>');
        expect(mail.html).not.toContain(HOSTILE);
      }
    });
  }

  it('keeps a value with line breaks out of the headers', async () => {
    const to = 'header-injection@example.test';
    const rendered = renderMail('notification', { title: 'Hello\r\nBcc: victim@example.test', body: 'b' });
    expect(rendered.subject).toBe('Hello Bcc: victim@example.test');
    await createSmtpMailer(smtp.url, FROM).send({ to, ...rendered });
    const mail = await smtp.nextMail(to);
    expect(mail.to).toEqual([to]);
    expect(readMail(mail).headers.has('bcc')).toBe(false);
  });
});

describe('values a template refuses or formats', () => {
  it('refuses a link that is not http(s)', () => {
    for (const link of ['javascript:alert(1)', 'JavaScript:alert(1)', 'data:text/html,<b>x</b>', 'ftp://parley.example/x', '/relative/path', 'not a url']) {
      expect(() => renderMail('verify-email', { link, expiresInMinutes: 60 }), link).toThrow(/http\(s\)/);
      expect(() => renderMail('reset-password', { link, expiresInMinutes: 60 }), link).toThrow(/http\(s\)/);
      expect(() => renderMail('notification', { title: 't', body: 'b', actionUrl: link }), link).toThrow(/http\(s\)/);
      expect(() => renderMail('password-changed', { at: PAID_AT, appUrl: link }), link).toThrow(/http\(s\)/);
    }
  });

  it("formats an amount with its currency's own minor unit", () => {
    const amount = (amountMinor: number, currency: string) =>
      renderMail('payment-receipt', { description: 'd', amountMinor, currency, orderId: 'o', paidAt: PAID_AT }).text;
    expect(amount(1500, 'JPY')).toContain('Amount: ¥1,500\n');
    expect(amount(1500, 'USD')).toContain('Amount: $15.00\n');
    expect(amount(5, 'USD')).toContain('Amount: $0.05\n');
    expect(amount(1500, 'BHD')).toMatch(/Amount: BHD\s1\.500\n/);
    expect(() => amount(1500, 'XYZ')).toThrow(/currency/);
    expect(() => amount(15.5, 'USD')).toThrow(/integer/);
  });

  it('prints times in UTC unless told a zone', () => {
    expect(renderMail('password-changed', { at: PAID_AT }).text).toContain('14 March 2026 at 09:26 UTC');
    expect(renderMail('password-changed', { at: PAID_AT, timeZone: 'America/New_York' }).text).toContain('14 March 2026 at 05:26 GMT-4');
    expect(() => renderMail('password-changed', { at: PAID_AT, timeZone: 'Mars/Olympus' })).toThrow(RangeError);
  });

  it('says how long a link lasts in hours when it can', () => {
    expect(renderMail('reset-password', { link: 'https://p.example/r', expiresInMinutes: 60 }).text).toContain('valid for 1 hour and');
    expect(renderMail('verify-email', { link: 'https://p.example/v', expiresInMinutes: 90 }).text).toContain('valid for 90 minutes.');
  });
});

describe('the other mailers', () => {
  it('Resend receives the html with the text', async () => {
    const received: Array<{ path: string | undefined; authorization: string | undefined; body: Record<string, unknown> }> = [];
    const resend = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ path: `${request.method} ${request.url}`, authorization: request.headers.authorization, body: JSON.parse(body) });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"email_1"}');
      });
    });
    await new Promise<void>((resolve) => resend.listen(0, '127.0.0.1', resolve));
    try {
      const mailer = createResendMailer('re_test_key', `http://127.0.0.1:${(resend.address() as AddressInfo).port}`, FROM);
      const rendered = renderMail('new-sign-in', { device: 'Firefox on Linux', ip: '198.51.100.1', at: PAID_AT });
      await mailer.send({ to: 'resend@example.test', ...rendered });
      await mailer.send({ to: 'plain@example.test', subject: 'Plain', text: 'only text' });
      expect(received).toHaveLength(2);
      expect(received[0]).toEqual({
        path: 'POST /emails',
        authorization: 'Bearer re_test_key',
        body: { from: FROM, to: ['resend@example.test'], subject: rendered.subject, text: rendered.text, html: rendered.html },
      });
      expect(received[1]!.body).not.toHaveProperty('html');
    } finally {
      await new Promise((resolve) => resend.close(resolve));
    }
  });

  it('tells a refusal for good from one for now: Resend 4xx and 429 with Retry-After, SMTP 5xx and 4xx', async () => {
    const answers = [
      { status: 422, headers: {} },
      { status: 429, headers: { 'retry-after': '7' } },
      { status: 503, headers: {} },
    ];
    const resend = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const answer = answers.shift()!;
        response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end('{"message":"no"}');
      });
    });
    await new Promise<void>((resolve) => resend.listen(0, '127.0.0.1', resolve));
    const refusal = (sending: Promise<unknown>) =>
      sending.then(
        () => null,
        (error: unknown) => error as MailRefusedError,
      );
    try {
      const mailer = createResendMailer('re_test_key', `http://127.0.0.1:${(resend.address() as AddressInfo).port}`, FROM);
      const message = { to: 'x@example.test', subject: 's', text: 't' };
      expect(await refusal(mailer.send(message))).toMatchObject({ name: 'MailRefusedError', permanent: true });
      expect(await refusal(mailer.send(message))).toMatchObject({ permanent: false, retryAfterMs: 7000 });
      expect(await refusal(mailer.send(message))).toMatchObject({ permanent: false, retryAfterMs: undefined });
    } finally {
      await new Promise((resolve) => resend.close(resolve));
    }

    // a real SMTP server refusing recipients: 550 (no such mailbox) for one, 451 (try later) for another
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (address.address.startsWith('gone')) return callback(Object.assign(new Error('no such mailbox'), { responseCode: 550 }));
        return callback(Object.assign(new Error('greylisted, try later'), { responseCode: 451 }));
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    try {
      const mailer = createSmtpMailer(`smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`, FROM);
      expect(await refusal(mailer.send({ to: 'gone@example.test', subject: 's', text: 't' }))).toMatchObject({ permanent: true });
      expect(await refusal(mailer.send({ to: 'later@example.test', subject: 's', text: 't' }))).toMatchObject({ permanent: false });
      // what the job runtime makes of them: dead at once, or retried after the provider's delay
      expect(() => rethrowForJobs(new MailRefusedError('550', true))).toThrow(PermanentJobError);
      expect(() => rethrowForJobs(new MailRefusedError('429', false, 7000))).toThrow(RetryLaterError);
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });

  it('the log mailer logs the recipient, subject and text, never the html', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Record<string, unknown>),
        );
        callback();
      },
    });
    const rendered = renderMail('verify-email', { link: 'https://parley.example/verify-email?token=t', expiresInMinutes: 60 });
    await createLogMailer(createLogger({ level: 'info', destination }), { withText: true }).send({ to: 'log@example.test', ...rendered });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.mail).toEqual({ to: 'log@example.test', subject: rendered.subject, text: rendered.text });
    expect(JSON.stringify(lines)).not.toContain('<!DOCTYPE');
    // in production the one-time link stays out of the log
    await createLogMailer(createLogger({ level: 'info', destination }), { withText: false }).send({ to: 'log@example.test', ...rendered });
    expect(lines[1]!.mail).toEqual({ to: 'log@example.test', subject: rendered.subject });
    expect(JSON.stringify(lines[1])).not.toContain('token=');
  });
});

describe('the preview routes', () => {
  const app = Fastify().withTypeProvider<ZodTypeProvider>();
  beforeAll(async () => {
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    registerErrorHandling(app);
    await app.register(mailPreviewRoutes);
    await app.ready();
  });
  afterAll(() => app.close());

  it('lists the templates', async () => {
    const res = await app.inject({ method: 'GET', url: '/dev/mail' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ templates: ['verify-email', 'reset-password', 'password-changed', 'payment-receipt', 'new-sign-in', 'notification'] });
  });

  it('renders every template as html (the default) and as text', async () => {
    for (const name of MAIL_TEMPLATE_NAMES) {
      const html = await app.inject({ method: 'GET', url: `/dev/mail/${name}` });
      expect(html.statusCode, name).toBe(200);
      expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(html.body).toMatch(/^<!DOCTYPE html>[\s\S]*Parley[\s\S]*<\/html>$/);

      const text = await app.inject({ method: 'GET', url: `/dev/mail/${name}?format=text` });
      expect(text.statusCode, name).toBe(200);
      expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(text.body).not.toContain('<');
      expect(text.body).toContain('Parley');
    }
  });

  it('answers 404 in the error shape for an unknown template, 400 for an unknown format', async () => {
    const unknown = await app.inject({ method: 'GET', url: '/dev/mail/welcome-aboard' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: { code: 'not_found', message: 'Mail template not found' } });
    // a name of Object.prototype is no template either
    expect((await app.inject({ method: 'GET', url: '/dev/mail/constructor' })).statusCode).toBe(404);

    const format = await app.inject({ method: 'GET', url: '/dev/mail/verify-email?format=pdf' });
    expect(format.statusCode).toBe(400);
    expect(format.json().error.code).toBe('validation_failed');
  });
});
