import { z } from 'zod';
import { PermanentJobError, RetryLaterError, type JobDefinition, type JobQueue } from './jobs.js';
import { MailRefusedError, type MailMessage, type Mailer } from './mailer.js';

export const MAIL_SEND_JOB = 'mail.send';

/** The HTML part of a rendered template is a few kilobytes; the bound keeps a runaway one out of Redis. */
const MAX_HTML_CHARS = 256_000;

const mailMessageSchema = z.object({ to: z.string().min(3), subject: z.string().min(1), text: z.string(), html: z.string().max(MAX_HTML_CHARS).optional() });

/** Where services post e-mail: no request waits on the mail provider, and a failed send is retried. */
export interface MailOutbox {
  send(message: MailMessage): Promise<void>;
}

export function queuedMail(queue: JobQueue): MailOutbox {
  return { send: async (message) => void (await queue.enqueue(MAIL_SEND_JOB, mailMessageSchema.parse(message))) };
}

/** Sends one queued e-mail; the job goes once sent, since its text may hold a one-time link. */
export function mailJobs(mailer: Mailer): Array<JobDefinition<MailMessage>> {
  return [
    {
      name: MAIL_SEND_JOB,
      attempts: 6,
      backoffMs: 5_000,
      concurrency: 4,
      timeoutMs: 60_000,
      removeOnComplete: true,
      handle: (message) => mailer.send(mailMessageSchema.parse(message)).catch(rethrowForJobs),
    },
  ];
}

/** A provider's refusal as the job runtime understands it: never again, or not before its Retry-After. */
export function rethrowForJobs(error: unknown): never {
  if (error instanceof MailRefusedError && error.permanent) throw new PermanentJobError(error.message);
  if (error instanceof MailRefusedError && error.retryAfterMs !== undefined) throw new RetryLaterError(error.message, error.retryAfterMs);
  throw error;
}
