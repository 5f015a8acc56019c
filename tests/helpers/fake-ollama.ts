import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A local Ollama server, speaking the API as the official `ollama` client uses it:
 * `POST /api/chat` (an NDJSON stream, or one JSON object with `stream: false`), `GET /api/tags`, `GET /`.
 *
 * The model name picks the behaviour (its tag, after ':', is ignored):
 * - any other name: answers `replyTo(last user message)`, one token (a word with its leading space) per line;
 * - `slow`: the same reply, each token held until the test calls `chat.release()` on that chat, or,
 *   with the `slowTokenMs` option, sent every `slowTokenMs` (the headers go out with the first
 *   token, as Ollama's do, so the client's `chat()` itself waits for it);
 * - `think`: as a reasoning model, a first chunk with only `thinking` (empty `content`) at once, then
 *   the reply's tokens held as `slow`'s are;
 * - `drop`: sends `dropAfterTokens` tokens (2 unless told), then destroys the socket;
 * - `fail`: 500 `{ error: 'model crashed' }`;
 * - `hang`: reads the request and never sends headers;
 * - `missing`: 404 as for a model that was never pulled.
 * With `apiKey`, every /api/ request needs `Authorization: Bearer <apiKey>`, else 401 `{ error: 'unauthorized' }`.
 *
 * Each chat request is a FakeChat in `chats` (and `chat(index)` awaits the index-th), whose `outcome`
 * says how its response ended: 'done', 'aborted' (the client closed the connection first: upstream
 * cancellation), 'dropped' (the fake cut it) or 'failed' (an error status was answered).
 */

export interface FakeOllamaOptions {
  apiKey?: string;
  /** The `slow` model sends a token every this many ms instead of waiting for release(). */
  slowTokenMs?: number;
  dropAfterTokens?: number;
  /** Model names /api/tags lists. */
  models?: string[];
}

export interface ReceivedOllamaRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, the raw text when it is not JSON, undefined when empty. */
  body: unknown;
}

export type ChatOutcome = 'done' | 'aborted' | 'dropped' | 'failed';

export interface FakeChat {
  model: string;
  behaviour: Behaviour;
  stream: boolean;
  messages: Array<{ role: string; content: string }>;
  /** The tokens written to the client so far (with `stream: false`, generated so far). */
  sent: string[];
  /** `slow`: lets `count` more tokens out (all of the rest with Infinity). */
  release(count?: number): void;
  /** Settles when the response has ended, with how. */
  ended: Promise<ChatOutcome>;
  /** Set once ended. */
  outcome: ChatOutcome | undefined;
  /** performance.now() at the request's arrival, and when its first token was written. */
  receivedAt: number;
  firstTokenAt: number | undefined;
}

type Behaviour = 'reply' | 'slow' | 'think' | 'drop' | 'fail' | 'hang' | 'missing';

const SPECIAL: ReadonlySet<string> = new Set(['slow', 'think', 'drop', 'fail', 'hang', 'missing']);

/** The fake model's whole answer to `message`. */
export function replyTo(message: string): string {
  return `You said "${message}". Tell me more about it!`;
}

/** How the fake splits a reply: each word with the spaces before it, so the tokens join back into the reply. */
export function tokensOf(reply: string): string[] {
  return reply.match(/\s*\S+/g) ?? [];
}

const DEFAULT_MODELS = ['llama3.2:latest', 'slow:latest', 'drop:latest', 'fail:latest', 'hang:latest'];

function modelEntry(name: string, index: number) {
  const digest = Buffer.from(name).toString('hex').padEnd(64, '0').slice(0, 64);
  return {
    name,
    model: name,
    modified_at: new Date(Date.UTC(2025, 0, 1 + index)).toISOString(),
    size: 2_019_393_189 + index,
    digest,
    details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export async function startFakeOllama(options: FakeOllamaOptions = {}) {
  const { apiKey, slowTokenMs, dropAfterTokens = 2, models = DEFAULT_MODELS } = options;
  const requests: ReceivedOllamaRequest[] = [];
  const chats: FakeChat[] = [];
  const chatWaiters: Array<{ index: number; resolve: (chat: FakeChat) => void }> = [];

  function addChat(chat: FakeChat): void {
    chats.push(chat);
    for (const waiter of chatWaiters.filter(({ index }) => index === chats.length - 1)) waiter.resolve(chat);
  }

  async function handleChat(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const request = (body ?? {}) as { model?: string; messages?: Array<{ role: string; content: string }>; stream?: boolean };
    const model = request.model ?? '';
    const messages = request.messages ?? [];
    const stream = request.stream !== false;
    const base = model.split(':')[0] ?? '';
    const behaviour: Behaviour = SPECIAL.has(base) ? (base as Behaviour) : 'reply';
    const lastUser = [...messages].reverse().find(({ role }) => role === 'user');
    const tokens = tokensOf(replyTo(lastUser?.content ?? ''));

    let allowed = behaviour === 'think' || (behaviour === 'slow' && slowTokenMs === undefined) ? 0 : Infinity;
    let wake: (() => void) | undefined;
    let finish!: (outcome: ChatOutcome) => void;
    const chat: FakeChat = {
      model,
      behaviour,
      stream,
      messages,
      sent: [],
      release(count = 1) {
        allowed += count;
        wake?.();
      },
      ended: new Promise<ChatOutcome>((resolve) => (finish = resolve)),
      outcome: undefined,
      receivedAt: performance.now(),
      firstTokenAt: undefined,
    };
    const end = (outcome: ChatOutcome) => {
      if (chat.outcome) return;
      chat.outcome = outcome;
      wake?.();
      finish(outcome);
    };
    // 'close' before the response finished: the client went away (or the fake cut it, marked first).
    res.on('close', () => end('aborted'));
    addChat(chat);

    if (behaviour === 'fail') {
      sendJson(res, 500, { error: 'model crashed' });
      return end('failed');
    }
    if (behaviour === 'missing') {
      sendJson(res, 404, { error: `model "${model}" not found, try pulling it first` });
      return end('failed');
    }
    if (behaviour === 'hang') return;

    const nextToken = async (): Promise<boolean> => {
      if (behaviour === 'slow' && slowTokenMs !== undefined) await new Promise((resolve) => setTimeout(resolve, slowTokenMs));
      while (chat.sent.length >= allowed && !chat.outcome) await new Promise<void>((resolve) => (wake = resolve));
      return !chat.outcome;
    };
    const drop = () => {
      end('dropped');
      res.socket?.destroy();
    };
    const stats = () => ({
      done_reason: 'stop',
      total_duration: 1_500_000 * (tokens.length + 1),
      load_duration: 1_000_000,
      prompt_eval_count: messages.reduce((count, { content }) => count + tokensOf(content).length, 0),
      prompt_eval_duration: 500_000,
      eval_count: tokens.length,
      eval_duration: 1_500_000 * tokens.length,
    });

    if (!stream) {
      for (const token of tokens) {
        if (behaviour === 'drop' && chat.sent.length === dropAfterTokens) return drop();
        if (!(await nextToken())) return;
        chat.sent.push(token);
      }
      sendJson(res, 200, { model, created_at: new Date().toISOString(), message: { role: 'assistant', content: tokens.join('') }, done: true, ...stats() });
      return end('done');
    }

    // As from Ollama, the headers go out with the first token: a model still loading holds them.
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (behaviour === 'think') {
      const thought = { role: 'assistant', content: '', thinking: 'The student wants to talk.' };
      res.write(`${JSON.stringify({ model, created_at: new Date().toISOString(), message: thought, done: false })}\n`);
    }
    for (const token of tokens) {
      if (behaviour === 'drop' && chat.sent.length === dropAfterTokens) return drop();
      if (!(await nextToken())) return;
      const line = `${JSON.stringify({ model, created_at: new Date().toISOString(), message: { role: 'assistant', content: token }, done: false })}\n`;
      chat.sent.push(token);
      chat.firstTokenAt ??= performance.now();
      // Written out before going on, so that a drop cuts the connection after these tokens, not before.
      await new Promise<void>((resolve) => {
        res.write(line, () => resolve());
        void chat.ended.then(() => resolve());
      });
    }
    res.once('finish', () => end('done'));
    res.end(`${JSON.stringify({ model, created_at: new Date().toISOString(), message: { role: 'assistant', content: '' }, done: true, ...stats() })}\n`);
  }

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
      if (path.startsWith('/api/') && apiKey !== undefined && req.headers.authorization !== `Bearer ${apiKey}`) {
        return sendJson(res, 401, { error: 'unauthorized' });
      }
      if (req.method === 'POST' && path === '/api/chat') return handleChat(req, res, body);
      if (req.method === 'GET' && path === '/api/tags') return sendJson(res, 200, { models: models.map(modelEntry) });
      if (req.method === 'GET' && path === '/') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return void res.end('Ollama is running');
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found');
    })().catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    chats,
    /** The index-th chat request (0-based), once it has arrived. */
    chat(index: number): Promise<FakeChat> {
      const arrived = chats[index];
      if (arrived) return Promise.resolve(arrived);
      return new Promise((resolve) => chatWaiters.push({ index, resolve }));
    },
    close(): Promise<void> {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

export type FakeOllama = Awaited<ReturnType<typeof startFakeOllama>>;
