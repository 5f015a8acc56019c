import nodemailer from 'nodemailer';
import type { Logger } from './logger.js';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** The same message as HTML, sent alongside the text (multipart/alternative). */
  html?: string | undefined;
}

export interface Mailer {
  readonly kind: 'log' | 'smtp' | 'resend';
  send(message: MailMessage): Promise<void>;
}

/** Development default: the message (with its link) goes to the log, as text only: the HTML would drown it. */
export function createLogMailer(logger: Logger): Mailer {
  return {
    kind: 'log',
    send: async (message) => {
      logger.info({ mail: { to: message.to, subject: message.subject, text: message.text } }, 'e-mail (not sent: no SMTP_URL or RESEND_API_KEY)');
    },
  };
}

export function createSmtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport(url);
  return {
    kind: 'smtp',
    send: async (message) => {
      await transport.sendMail({ from, to: message.to, subject: message.subject, text: message.text, html: message.html });
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
      if (!response.ok) throw new Error(`Resend answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
    },
  };
}
