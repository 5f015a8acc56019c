import { request as httpRequest, type IncomingMessage } from 'node:http';

export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

export interface SseStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** The body when the answer is not an event stream (an error). */
  body: () => Promise<string>;
  /** Resolves with the next event, or null once the stream has ended. */
  next(): Promise<SseEvent | null>;
  /** Comment lines (`: heartbeat`) seen so far. */
  comments: string[];
  /** Settles when the server ended the response or the connection closed. */
  ended: Promise<void>;
  /** Closes the connection from the client's side. */
  close(): void;
}

/**
 * An EventSource-like reader over a real connection: it parses `id`, `event`, `data` and
 * comment lines as the WHATWG spec does, so tests see exactly what a browser would.
 */
export function openSse(url: string, options: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = httpRequest(url, {
      method: options.method ?? 'GET',
      headers: { accept: 'text/event-stream', ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const events: SseEvent[] = [];
      const waiting: Array<(event: SseEvent | null) => void> = [];
      const comments: string[] = [];
      let buffer = '';
      let finished = false;
      let raw = '';
      let current: { id?: string; event?: string; data: string[] } = { data: [] };
      const deliver = (event: SseEvent | null) => {
        const waiter = waiting.shift();
        if (waiter) waiter(event);
        else if (event) events.push(event);
      };
      const ended = new Promise<void>((done) => {
        const finish = () => {
          if (finished) return;
          finished = true;
          while (waiting.length) deliver(null);
          done();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      });
      const isStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (!isStream) {
          raw += chunk;
          return;
        }
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
          if (line === '') {
            if (current.data.length) deliver({ id: current.id, event: current.event, data: current.data.join('\n') });
            current = { data: [] };
          } else if (line.startsWith(':')) comments.push(line.slice(1).trim());
          else {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'data') current.data.push(value);
            else if (field === 'id') current.id = value;
            else if (field === 'event') current.event = value;
          }
        }
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        comments,
        ended,
        body: async () => {
          await ended;
          return raw;
        },
        next: () => {
          const event = events.shift();
          if (event) return Promise.resolve(event);
          if (finished) return Promise.resolve(null);
          return new Promise((done) => waiting.push(done));
        },
        close: () => {
          req.destroy();
          res.destroy();
        },
      });
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Reads events until the stream ends. */
export async function readAll(stream: SseStream): Promise<SseEvent[]> {
  const all: SseEvent[] = [];
  for (let event = await stream.next(); event; event = await stream.next()) all.push(event);
  return all;
}
