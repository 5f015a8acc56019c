import { createHmac, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { safeEqual } from '../shared/crypto.js';

/**
 * Where files live. Keys follow the document's layout: avatars/{userId}/{ts}.webp,
 * thumbnails/..., videos/..., attachments/...
 */
export interface ObjectStorage {
  readonly kind: 'local' | 's3';
  put(key: string, body: Buffer, contentType: string): Promise<void>;
  /**
   * Streams `body` to `key` without holding it in memory; the object appears whole or not at all
   * (a stream that errors leaves the previous object, if any). Resolves with the bytes stored.
   */
  putStream(key: string, body: Readable, contentType: string): Promise<number>;
  putFile(key: string, file: string, contentType: string): Promise<void>;
  /** A small object's bytes (a playlist), or null when there is none. */
  get(key: string): Promise<Buffer | null>;
  /** Copies the object to a local file (for tools that need a path, such as ffmpeg). */
  download(key: string, file: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Deletes every object whose key starts with `prefix` (a folder: ends with "/"); resolves with how many. */
  deletePrefix(prefix: string): Promise<number>;
  /** A URL a client can fetch the object from for `ttlSeconds` (a CDN URL when the object is public and one is configured). */
  url(key: string, options: { ttlSeconds: number; public?: boolean }): Promise<string>;
}

/** Passes bytes through, counting them. */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

const KEY = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\/){0,8}[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Keys are relative paths of safe segments: no "..", no leading "/", no backslashes. */
export function assertValidKey(key: string): void {
  if (!KEY.test(key) || key.split('/').some((segment) => segment === '.' || segment === '..' || segment.includes('..'))) {
    throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  '.webp': 'image/webp',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.avi': 'video/x-msvideo',
  '.mpg': 'video/mpeg',
  '.flv': 'video/x-flv',
  '.pdf': 'application/pdf',
};

export function contentTypeOf(key: string): string {
  return CONTENT_TYPES[path.extname(key).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The embedded default: a folder on disk, served by Parley itself at /storage/<key> through
 * URLs signed with HMAC-SHA256 and an expiry.
 */
export class LocalStorage implements ObjectStorage {
  readonly kind = 'local';

  constructor(
    private readonly root: string,
    private readonly publicBaseUrl: string,
    private readonly secret: string,
    private readonly now: () => Date,
  ) {}

  /** The file of `key`, guaranteed to be inside the root. */
  pathOf(key: string): string {
    assertValidKey(key);
    const file = path.resolve(this.root, key);
    if (!file.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
    return file;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, body);
  }

  async putStream(key: string, body: Readable): Promise<number> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    // written aside, then renamed over: a reader never sees half a file, a failed upload leaves the old one
    const partial = `${file}.${randomUUID()}.partial`;
    const counter = new ByteCounter();
    try {
      await pipeline(body, counter, createWriteStream(partial));
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
    return counter.bytes;
  }

  async putFile(key: string, source: string): Promise<void> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    await copyFile(source, file);
  }

  async get(key: string): Promise<Buffer | null> {
    return readFile(this.pathOf(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'EISDIR') return null;
      throw error;
    });
  }

  async download(key: string, file: string): Promise<void> {
    await copyFile(this.pathOf(key), file);
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const folder = this.pathOf(prefix.replace(/\/$/, ''));
    const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      // no folder, or an object of that very name, which is not inside it
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
      throw error;
    });
    if (!entries) return 0;
    const files = entries.filter((entry) => entry.isFile()).length;
    await rm(folder, { recursive: true, force: true });
    return files;
  }

  private signature(key: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`${key}\n${expires}`).digest('base64url');
  }

  async url(key: string, { ttlSeconds }: { ttlSeconds: number }): Promise<string> {
    assertValidKey(key);
    const expires = Math.floor(this.now().getTime() / 1000) + ttlSeconds;
    const url = new URL(`/storage/${key}`, this.publicBaseUrl);
    url.searchParams.set('expires', String(expires));
    url.searchParams.set('signature', this.signature(key, expires));
    return url.toString();
  }

  /** The file behind a signed URL, or null when the signature is wrong, expired or the file is gone. */
  async open(key: string, expires: number, signature: string): Promise<{ stream: Readable; size: number; contentType: string } | null> {
    if (!KEY.test(key) || expires < this.now().getTime() / 1000 || !safeEqual(signature, this.signature(key, expires))) return null;
    const file = this.pathOf(key);
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return null;
    return { stream: createReadStream(file), size: info.size, contentType: contentTypeOf(key) };
  }
}

export interface S3Options {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  publicUrl?: string | undefined;
}

/** How long the bucket may take to accept a connection, and to send or take the next bytes of a request. */
const S3_CONNECT_TIMEOUT_MS = 5_000;
const S3_IDLE_TIMEOUT_MS = 30_000;

/** S3, Cloudflare R2 or MinIO through the AWS SDK; presigned GET URLs for private objects. */
export class S3Storage implements ObjectStorage {
  readonly kind = 's3';
  private readonly client: S3Client;

  constructor(private readonly options: S3Options) {
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      ...(options.accessKeyId && options.secretAccessKey
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
        : {}),
      // the SDK waits without limit by default: a bucket that stops answering would hold a request (and its upload) forever
      requestHandler: { connectionTimeout: S3_CONNECT_TIMEOUT_MS, requestTimeout: S3_IDLE_TIMEOUT_MS },
    });
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    assertValidKey(key);
    await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.length }));
  }

  async putStream(key: string, body: Readable, contentType: string): Promise<number> {
    assertValidKey(key);
    const counter = new ByteCounter();
    // a multipart upload of unknown length: parts are sent as they fill, the object appears on completion
    const upload = new Upload({ client: this.client, params: { Bucket: this.options.bucket, Key: key, Body: counter, ContentType: contentType } });
    try {
      // the source's error ends the pipeline, which fails the upload's reads
      await Promise.all([upload.done(), pipeline(body, counter)]);
    } catch (error) {
      // a failed upload stops reading: the source is released rather than left paused mid-body
      body.destroy();
      await upload.abort().catch(() => undefined);
      throw error;
    }
    return counter.bytes;
  }

  async putFile(key: string, file: string, contentType: string): Promise<void> {
    assertValidKey(key);
    // Upload sends the file as buffered parts (one PUT when small), each with its checksum in a header:
    // a plain stream body would go out aws-chunked with a trailing checksum, which not every
    // S3-compatible server decodes, and PutObject alone stops at 5 GB.
    await new Upload({ client: this.client, params: { Bucket: this.options.bucket, Key: key, Body: createReadStream(file), ContentType: contentType } }).done();
  }

  async get(key: string): Promise<Buffer | null> {
    assertValidKey(key);
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return object.Body ? Buffer.from(await object.Body.transformToByteArray()) : Buffer.alloc(0);
    } catch (error) {
      if (error instanceof NoSuchKey) return null;
      throw error;
    }
  }

  async download(key: string, file: string): Promise<void> {
    assertValidKey(key);
    const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
    if (!object.Body) throw new Error(`object ${key} has no body`);
    await pipeline(object.Body as Readable, createWriteStream(file));
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    // a folder, as on disk: "videos/a" is "videos/a/", never "videos/ab/..."
    const folder = `${prefix.replace(/\/$/, '')}/`;
    assertValidKey(folder.slice(0, -1));
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: folder, ContinuationToken: token }));
      const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
      if (keys.length) {
        const result = await this.client.send(new DeleteObjectsCommand({ Bucket: this.options.bucket, Delete: { Objects: keys, Quiet: true } }));
        // a 200 may still name keys it could not delete
        if (result.Errors?.length) {
          const [first] = result.Errors;
          throw new Error(`could not delete ${result.Errors.length} objects under ${folder}: ${first?.Key} (${first?.Code}: ${first?.Message})`);
        }
        deleted += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }

  async url(key: string, { ttlSeconds, public: isPublic = false }: { ttlSeconds: number; public?: boolean }): Promise<string> {
    assertValidKey(key);
    if (isPublic && this.options.publicUrl)
      return new URL(key, this.options.publicUrl.endsWith('/') ? this.options.publicUrl : `${this.options.publicUrl}/`).toString();
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.options.bucket, Key: key }), { expiresIn: ttlSeconds });
  }

  close(): void {
    this.client.destroy();
  }
}
