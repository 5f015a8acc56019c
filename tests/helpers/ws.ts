import type { IncomingHttpHeaders } from 'node:http';
import { WebSocket } from 'ws';

/** A frame the server sent: JSON with a `type`. */
export type Frame = { type: string } & Record<string, unknown>;

/** How long `next` waits unless told: a frame this late means it is not coming. */
const NEXT_FRAME_TIMEOUT_MS = 5_000;

export interface WsClient {
  socket: WebSocket;
  /**
   * Resolves with the next frame of `type` (any frame when unset), one received before and not
   * yet taken included; rejects, naming it, when none comes within `timeoutMs` or the
   * connection closes first.
   */
  next(type?: string, options?: { timeoutMs?: number }): Promise<Frame>;
  /** Frames received and not yet taken by `next`, in order. */
  pending: Frame[];
  send(frame: unknown): void;
  /** Settles when the connection has closed, with the server's code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** The /ws URL of a listening test app (`listen` answers http://…). */
export function wsUrl(httpUrl: string, path = '/ws'): string {
  return `${httpUrl.replace(/^http/, 'ws')}${path}`;
}

/** A real `ws` client, connected; rejects when the upgrade is refused. */
export async function openWs(url: string, options: { headers?: Record<string, string>; autoPong?: boolean } = {}): Promise<WsClient> {
  const socket = new WebSocket(url, { headers: options.headers, autoPong: options.autoPong ?? true });
  const pending: Frame[] = [];
  const waiting: Array<{ type: string | undefined; resolve: (frame: Frame) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }> = [];
  let closedAs: { code: number; reason: string } | undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.once('close', (code, reason) => {
      closedAs = { code, reason: reason.toString() };
      for (const waiter of waiting.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`the connection closed (${code} ${reason.toString()}) before a '${waiter.type ?? 'any'}' frame`));
      }
      resolve(closedAs);
    });
  });
  socket.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as Frame;
    const waiter = waiting.find((w) => w.type === undefined || w.type === frame.type);
    if (!waiter) return void pending.push(frame);
    waiting.splice(waiting.indexOf(waiter), 1);
    clearTimeout(waiter.timer);
    waiter.resolve(frame);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return {
    socket,
    pending,
    closed,
    send: (frame) => socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    close: () => socket.close(),
    next: (type, { timeoutMs = NEXT_FRAME_TIMEOUT_MS } = {}) => {
      const index = pending.findIndex((frame) => type === undefined || frame.type === type);
      if (index >= 0) return Promise.resolve(pending.splice(index, 1)[0]!);
      if (closedAs) return Promise.reject(new Error(`the connection is closed (${closedAs.code}); no '${type ?? 'any'}' frame came`));
      return new Promise<Frame>((resolve, reject) => {
        const waiter = {
          type,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiting.splice(waiting.indexOf(waiter), 1);
            reject(new Error(`no '${type ?? 'any'}' frame within ${timeoutMs} ms (pending: ${JSON.stringify(pending).slice(0, 500)})`));
          }, timeoutMs),
        };
        waiting.push(waiter);
      });
    },
  };
}

/** The HTTP answer to an upgrade the server refuses (rejects if it upgrades). */
export function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.close();
      reject(new Error('upgraded, expected a refusal'));
    });
    socket.once('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    socket.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

/** The frames of one reply: the `start`, its `token`s, and the `done` or `error` that ends it. */
export async function replyFrames(client: WsClient): Promise<{ start: Frame; tokens: Frame[]; end: Frame }> {
  const start = await client.next('start');
  const tokens: Frame[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame.type === 'token') tokens.push(frame);
    else if (frame.type === 'done' || frame.type === 'error') return { start, tokens, end: frame };
    else throw new Error(`unexpected '${frame.type}' frame in a reply: ${JSON.stringify(frame)}`);
  }
}

/** Sends a message and reads its whole reply. */
export async function chat(client: WsClient, content: string, chatId?: string) {
  client.send({ type: 'message', content, ...(chatId ? { chatId } : {}) });
  return replyFrames(client);
}
