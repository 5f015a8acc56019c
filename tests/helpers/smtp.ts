import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface CapturedMail {
  to: string[];
  raw: string;
}

/** The message's Subject header (as sent: plain ASCII for Parley's subjects). */
function subjectOf(mail: CapturedMail): string {
  return /^Subject: (.*)$/m.exec(mail.raw)?.[1] ?? '';
}

/** A real SMTP server on loopback that keeps every message it receives. */
export async function startSmtpCapture() {
  const messages: CapturedMail[] = [];
  const waiters: Array<{ wanted: (mail: CapturedMail) => boolean; resolve: (mail: CapturedMail) => void }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      stream.on('end', () => {
        const mail = { to: session.envelope.rcptTo.map((rcpt) => rcpt.address), raw };
        messages.push(mail);
        const waiter = waiters.find((w) => w.wanted(mail));
        if (waiter) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(mail);
        }
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    /**
     * The next message to `to` (or one already received that no earlier call took); with
     * `subject`, the next one whose Subject line contains it (others stay for later calls).
     */
    nextMail(to: string, subject?: string): Promise<CapturedMail> {
      const wanted = (mail: CapturedMail) => mail.to.includes(to) && (subject === undefined || subjectOf(mail).includes(subject));
      const seen = messages.find(wanted);
      if (seen) {
        messages.splice(messages.indexOf(seen), 1);
        return Promise.resolve(seen);
      }
      return new Promise((resolve) =>
        waiters.push({
          wanted,
          resolve: (mail) => {
            messages.splice(messages.indexOf(mail), 1);
            resolve(mail);
          },
        }),
      );
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The token of the first `?token=` link in a message (quoted-printable soft breaks undone). */
export function tokenFrom(mail: CapturedMail): string {
  const body = mail.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const match = /[?&]token=([A-Za-z0-9_-]+)/.exec(body);
  if (!match?.[1]) throw new Error(`no token link in:\n${mail.raw}`);
  return match[1];
}

/** The first link in a message that carries a `?token=` (quoted-printable soft breaks undone). */
export function linkFrom(mail: CapturedMail): URL {
  const body = mail.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const match = /https?:\/\/[^\s"<>]+?[?&]token=[A-Za-z0-9_-]+/.exec(body);
  if (!match) throw new Error(`no token link in:\n${mail.raw}`);
  return new URL(match[0]);
}
