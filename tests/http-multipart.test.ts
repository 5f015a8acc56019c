import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { peekBytes } from '../src/http/multipart.js';

/** `data` in `chunkSize` pieces, each produced on a later turn, as an upload arrives. */
function trickle(data: Buffer, chunkSize: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      setImmediate(() => this.push(offset < data.length ? data.subarray(offset, (offset += chunkSize)) : null));
    },
  });
}

/** `data`, then `error` instead of the end. */
function failing(data: Buffer, error: Error): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) setImmediate(() => this.destroy(error));
      else this.push(data);
      sent = true;
    },
  });
}

async function iterate(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const consumers: Array<[string, (stream: Readable) => Promise<Buffer>]> = [
  ['async iteration', iterate],
  [
    'data events',
    (stream) =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.once('end', () => resolve(Buffer.concat(chunks)));
        stream.once('error', reject);
      }),
  ],
];

describe.each(consumers)('peekBytes, then reading the stream by %s', (_how, readAll) => {
  it.each([
    ['longer than the peek, in small chunks', 3000, 7, 100],
    ['longer than the peek and than a stream buffer, in 1 KiB chunks', 300 * 1024, 1024, 100 * 1024],
    ['one chunk longer than the peek', 120, 120, 100],
    ['exactly the peek', 100, 10, 100],
    ['shorter than the peek', 50, 7, 100],
    ['empty', 0, 1, 100],
  ])('%s', async (_what, length, chunkSize, count) => {
    const data = randomBytes(length);
    const { head, stream } = await peekBytes(trickle(data, chunkSize), count);
    expect(head).toEqual(data.subarray(0, count));
    expect((await readAll(stream)).equals(data)).toBe(true);
  });
});

describe('peekBytes', () => {
  it('fails with the error of a stream that breaks before the peek is full', async () => {
    const error = new Error('the client went away');
    const source = failing(Buffer.alloc(10), error);
    await expect(peekBytes(source, 100)).rejects.toBe(error);
  });

  it('hands on a stream that fails with the source once the peek is full', async () => {
    const error = new Error('the client went away');
    const { head, stream } = await peekBytes(failing(Buffer.alloc(200, 1), error), 100);
    expect(head).toEqual(Buffer.alloc(100, 1));
    await expect(iterate(stream)).rejects.toBe(error);
  });
});
