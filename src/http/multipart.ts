import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../shared/errors.js';

/** Room for the part headers and boundaries around the file in a multipart body. */
export const MULTIPART_OVERHEAD_BYTES = 16 * 1024;

const NO_FILE = { fields: [{ in: 'body', path: 'file', message: 'send exactly one part, a file named "file"' }] };

/** A declared length the file cannot fit in is refused before a byte of it is read. */
export function refuseDeclaredOver(maxBytes: number): onRequestAsyncHookHandler {
  return async (request) => {
    if (Number(request.headers['content-length']) > maxBytes + MULTIPART_OVERHEAD_BYTES)
      throw new AppError('payload_too_large', `The upload is larger than ${maxBytes} bytes`);
  };
}

/**
 * A parser's complaint about the body (no boundary, cut short, malformed part headers, a second
 * part) as the client's 400; an error of ours or a 4xx keeps its meaning.
 */
function asClientError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  const { code, statusCode } = error as { code?: string; statusCode?: number };
  if (code === 'FST_FIELDS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT')
    return new AppError('validation_failed', 'The upload must hold one file part and nothing else', NO_FILE);
  if (typeof statusCode === 'number' && statusCode < 500) return error;
  return new AppError('validation_failed', 'Malformed multipart/form-data body', { fields: [{ in: 'body', path: '', message: (error as Error).message }] });
}

/** Fails with 413 once more than `maxBytes` went through. */
class SizeLimit extends Transform {
  private bytes = 0;
  constructor(private readonly maxBytes: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) callback(new AppError('payload_too_large', `The file is larger than ${this.maxBytes} bytes`));
    else callback(null, chunk);
  }
}

export interface FilePart {
  filename: string;
  /** As the client declared it: a hint, never trusted. */
  mimetype: string;
  /** The file's bytes, failing with 413 past the limit and with 400 when the body is malformed. */
  stream: Readable;
}

/**
 * The one file part of a multipart upload, streamed: `consume` must read `stream` to its end (or
 * fail). A form of another shape is a 400.
 */
export async function withFilePart<T>(request: FastifyRequest, maxBytes: number, consume: (part: FilePart) => Promise<T>): Promise<T> {
  if (!request.isMultipart()) throw new AppError('unsupported_media_type', 'Send the file as multipart/form-data');
  let file;
  try {
    // one byte over the limit is enough to know, and busboy stops there
    file = await request.file({ limits: { fileSize: maxBytes + 1, files: 1, fields: 0 } });
  } catch (error) {
    throw asClientError(error);
  }
  if (!file) throw new AppError('validation_failed', 'No file in the upload', NO_FILE);
  // the parser may have failed on the bytes it already had, before anyone listened
  if (file.file.errored) throw asClientError(file.file.errored);
  const limited = new SizeLimit(maxBytes);
  // Counted here rather than by busboy's limit, which waits for the end of the part (of a
  // chunked body that may never end) before it reports the overflow.
  file.file.on('error', (error) => limited.destroy(asClientError(error) as Error));
  // An error while the consumer is between reads (awaiting something else) has no listener
  // yet; it stays on the stream (`errored`), where the consumer's next read finds it.
  limited.on('error', () => undefined);
  file.file.pipe(limited);
  try {
    return await consume({ filename: file.filename, mimetype: file.mimetype, stream: limited });
  } finally {
    // a consumer that stopped early leaves the rest of the body unread: drain it so the reply can go
    file.file.unpipe(limited);
    if (!file.file.readableEnded) file.file.resume();
  }
}

/** The one file part of a multipart upload, whole in memory (small files: images, documents). */
export async function readFilePart(request: FastifyRequest, maxBytes: number): Promise<Buffer> {
  return withFilePart(request, maxBytes, async ({ stream }) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  });
}

/**
 * The first `count` bytes of a stream (fewer when it is shorter), and a stream that still yields
 * every byte: for checking what a file is before storing it.
 */
export function peekBytes(stream: Readable, count: number): Promise<{ head: Buffer; stream: Readable }> {
  return new Promise((resolve, reject) => {
    if (stream.errored) return reject(stream.errored);
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (ended: boolean) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', reject);
      const head = Buffer.concat(chunks);
      if (ended) return resolve({ head, stream: Readable.from(head.length ? [head] : []) });
      stream.unshift(head);
      resolve({ head: head.subarray(0, count), stream });
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (size < count && (chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        size += chunk.length;
      }
      if (size >= count) finish(false);
    };
    const onEnd = () => finish(true);
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', reject);
  });
}
