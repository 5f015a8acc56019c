import net from 'node:net';

/**
 * One HTTP/1.1 connection driven by hand, for what fetch cannot do: hold a request between its
 * headers and its body, and pipeline a second request behind it on the same connection.
 */
export interface RawConnection {
  write(text: string): void;
  /** Resolves once everything received so far contains `text`; rejects if the connection closes first. */
  until(text: string): Promise<void>;
  /** Everything received, once the server has closed the connection. */
  closed: Promise<string>;
}

export async function openRawConnection(port: number): Promise<RawConnection> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  let ended = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((waiter) => waiter());
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    wake();
  });
  const closed = new Promise<string>((resolve) =>
    socket.once('close', () => {
      ended = true;
      wake();
      resolve(received);
    }),
  );
  socket.on('error', () => undefined);
  return {
    write: (text) => socket.write(text),
    until: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (received.includes(text)) {
            waiters.delete(check);
            resolve();
          } else if (ended) {
            waiters.delete(check);
            reject(new Error(`connection closed before "${text}"; received:\n${received}`));
          }
        };
        waiters.add(check);
        check();
      }),
    closed,
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits the HTTP/1.1 responses of one connection (Content-Length framed, as Fastify sends JSON). */
export function parseResponses(text: string): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = text;
  while (rest.length) {
    const headerEnd = rest.indexOf('\r\n\r\n');
    if (headerEnd < 0) break;
    const [statusLine = '', ...lines] = rest.slice(0, headerEnd).split('\r\n');
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    const status = Number(statusLine.split(' ')[1]);
    const length = Number(headers['content-length'] ?? 0);
    responses.push({ status, headers, body: rest.slice(headerEnd + 4, headerEnd + 4 + length) });
    rest = rest.slice(headerEnd + 4 + length);
  }
  return responses;
}
