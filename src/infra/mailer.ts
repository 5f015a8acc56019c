import nodemailer from 'nodemailer';
import type { Logger } from './logger.js';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** The same message as HTML, sent alongside the text (multipart/alternative). */
  html?: string | undefined;
}

/**
 * The mail provider refused a message: for good (`permanent`: a 5xx SMTP reply, a 4xx from
 * Resend other than 429), or for now, to be tried again after `retryAfterMs` when it said so.
 */
export class MailRefusedError extends Error {
  override name = 'MailRefusedError';
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface Mailer {
  readonly kind: 'log' | 'smtp' | 'resend';
  send(message: MailMessage): Promise<void>;
}

/**
 * Without SMTP or Resend: the message goes to the log. In development with its text (the
 * links a developer clicks), as text only (the HTML would drown it); in production without
 * it, since the text holds one-time links that must not sit in a log.
 */
export function createLogMailer(logger: Logger, { withText }: { withText: boolean }): Mailer {
  return {
    kind: 'log',
    send: async (message) => {
      const mail = withText ? { to: message.to, subject: message.subject, text: message.text } : { to: message.to, subject: message.subject };
      logger.info({ mail }, 'e-mail (not sent: no SMTP_URL or RESEND_API_KEY)');
    },
  };
}

export function createSmtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport(url);
  return {
    kind: 'smtp',
    send: async (message) => {
      try {
        await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text, html: message.html });
      } catch (error) {
        // SMTP replies 5xx for what will never pass (no such mailbox, refused), 4xx for "later"
        const code = (error as { responseCode?: unknown }).responseCode;
        if (typeof code === 'number') throw new MailRefusedError(`SMTP answered ${code}`, code >= 500);
        throw error;
      }
    },
  };
}

/** Resend's HTTP API (POST /emails with a Bearer key). */
export function createResendMailer(apiKey: string, baseUrl: string, from: string): Mailer {
  return {
    kind: 'resend',
    send: async (message) => {
      const response = await fetch(new URL('/emails', baseUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ from, to: [message.to], subject: message.subject, text: message.text, html: message.html }),
        signal: AbortSignal.timeout(10_000),
      });
      if (response.ok) return;
      const refusal = `Resend answered ${response.status}: ${(await response.text()).slice(0, 200)}`;
      if (response.status === 429) throw new MailRefusedError(refusal, false, retryAfterMs(response.headers.get('retry-after')));
      throw new MailRefusedError(refusal, response.status >= 400 && response.status < 500);
    },
  };
}

/** A Retry-After header (seconds or an HTTP date) in milliseconds, when it says something usable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
