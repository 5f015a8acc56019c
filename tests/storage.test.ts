import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage, S3Storage, type ObjectStorage } from '../src/infra/storage.js';
import { repoRoot, run, waitForOutput } from './helpers/spawn.js';

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** `data` delivered in `chunkSize` pieces, as a network upload arrives. */
function chunked(data: Buffer, chunkSize: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      this.push(offset < data.length ? data.subarray(offset, (offset += chunkSize)) : null);
    },
  });
}

/** Yields `data` in pieces, then fails with `error` instead of ending: a client that hangs up mid-upload. */
function failingAfter(data: Buffer, error: Error): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset < data.length) this.push(data.subarray(offset, (offset += 64 * 1024)));
      else this.destroy(error);
    },
  });
}

interface Subject {
  storage: ObjectStorage;
  /** Every key under `prefix`, listed behind the adapter's back. */
  keys(prefix: string): Promise<string[]>;
  /** The bytes behind a URL the adapter handed out, or null when it is refused or gone. */
  fetchUrl(url: string): Promise<Buffer | null>;
  close(): Promise<void>;
}

const tempDirs: string[] = [];
const tempDir = (name: string) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), `parley-${name}-`));
  tempDirs.push(dir);
  return dir;
};
afterAll(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function localSubject(root = path.join(tempDir('storage'), 'root')): Promise<Subject & { storage: LocalStorage; root: string }> {
  await mkdir(root);
  const storage = new LocalStorage(root, 'http://parley.test', 'a storage secret', () => new Date());
  return {
    storage,
    root,
    keys: async (prefix) => {
      const entries = await readdir(path.join(root, prefix), { recursive: true, withFileTypes: true }).catch(() => []);
      return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
    },
    fetchUrl: async (url) => {
      const { pathname, searchParams } = new URL(url);
      const opened = await storage.open(pathname.replace(/^\/storage\//, ''), Number(searchParams.get('expires')), searchParams.get('signature') ?? '');
      if (!opened) return null;
      const chunks: Buffer[] = [];
      for await (const chunk of opened.stream as AsyncIterable<Buffer>) chunks.push(chunk);
      return Buffer.concat(chunks);
    },
    close: async () => undefined,
  };
}

async function s3Subject(): Promise<Subject> {
  const bucket = 'parley-media';
  // In a process of its own with OpenSSL's legacy provider: s3rver mints the continuation token of
  // a truncated listing with DES, which OpenSSL 3 refuses otherwise, and paging is under test here.
  const serve = `const S3rver = require('s3rver');
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: process.argv[1], configureBuckets: [{ name: '${bucket}', configs: [] }] })
      .run().then(({ port }) => console.log('s3rver on port ' + port));`;
  const server = run(process.execPath, ['--openssl-legacy-provider', '-e', serve, tempDir('s3')], { cwd: repoRoot, env: {} });
  await waitForOutput(server, 's3rver on port');
  const port = Number(/s3rver on port (\d+)/.exec(server.output())![1]);
  const options = { bucket, region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const storage = new S3Storage(options);
  const client = new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return {
    storage,
    keys: async (prefix) => {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((object) => object.Key!));
        token = page.NextContinuationToken;
      } while (token);
      return keys;
    },
    fetchUrl: async (url) => {
      const res = await fetch(url);
      return res.ok ? Buffer.from(await res.arrayBuffer()) : null;
    },
    close: async () => {
      storage.close();
      client.destroy();
      server.child.kill();
      await server.exit;
    },
  };
}

describe.each([
  ['LocalStorage on a folder', localSubject],
  ['S3Storage on a local S3-compatible server', s3Subject],
])('%s', (_name, start) => {
  let subject: Subject;
  let storage: ObjectStorage;
  beforeAll(async () => {
    subject = await start();
    storage = subject.storage;
  });
  afterAll(() => subject.close());

  /** Every test works in its own folder, so the listings are its own. */
  const folder = () => `t-${randomUUID()}`;

  it('puts, reads, links to and deletes a small object', async () => {
    const key = `${folder()}/hello.txt`;
    await storage.put(key, Buffer.from('hello'), 'text/plain');
    expect(await storage.get(key)).toEqual(Buffer.from('hello'));
    expect(await subject.fetchUrl(await storage.url(key, { ttlSeconds: 60 }))).toEqual(Buffer.from('hello'));
    await storage.delete(key);
    expect(await storage.get(key)).toBeNull();
    expect(await subject.fetchUrl(await storage.url(key, { ttlSeconds: 60 }))).toBeNull();
    await expect(storage.delete(key)).resolves.toBeUndefined();
  });

  it('streams an upload of several parts and reads back the same bytes', async () => {
    const key = `${folder()}/video.mp4`;
    // three 5 MiB parts on S3, the last one short, arriving in chunks smaller than a part
    const data = randomBytes(12 * MiB + 123);
    await expect(storage.putStream(key, chunked(data, 256 * 1024 + 7), 'video/mp4')).resolves.toBe(data.length);
    expect(sha256((await storage.get(key))!)).toBe(sha256(data));
    const file = path.join(tempDir('download'), 'video.mp4');
    await storage.download(key, file);
    expect(sha256(await readFile(file))).toBe(sha256(data));
  });

  it('streams a small upload and an empty one', async () => {
    const dir = folder();
    await expect(storage.putStream(`${dir}/small`, chunked(Buffer.from('a few bytes'), 3), 'text/plain')).resolves.toBe(11);
    expect(await storage.get(`${dir}/small`)).toEqual(Buffer.from('a few bytes'));
    await expect(storage.putStream(`${dir}/empty`, chunked(Buffer.alloc(0), 1), 'text/plain')).resolves.toBe(0);
    expect(await storage.get(`${dir}/empty`)).toEqual(Buffer.alloc(0));
  });

  it('replaces an object with a streamed upload', async () => {
    const key = `${folder()}/playlist.m3u8`;
    await storage.put(key, Buffer.from('old'), 'application/vnd.apple.mpegurl');
    const data = randomBytes(6 * MiB);
    await expect(storage.putStream(key, chunked(data, MiB), 'application/vnd.apple.mpegurl')).resolves.toBe(data.length);
    expect(sha256((await storage.get(key))!)).toBe(sha256(data));
  });

  // before the first S3 part fills, and after two parts went up
  it.each([
    ['100 KiB', 100 * 1024],
    ['11 MiB', 11 * MiB],
  ])('a source that fails after %s rejects with its error and stores nothing', async (_size, bytes) => {
    const dir = folder();
    const error = new Error('the client went away');
    await expect(storage.putStream(`${dir}/video.mp4`, failingAfter(randomBytes(bytes), error), 'video/mp4')).rejects.toBe(error);
    expect(await storage.get(`${dir}/video.mp4`)).toBeNull();
    expect(await subject.keys(`${dir}/`)).toEqual([]);
  });

  it.each([
    ['100 KiB', 100 * 1024],
    ['11 MiB', 11 * MiB],
  ])('a source that fails after %s leaves the previous object whole', async (_size, bytes) => {
    const key = `${folder()}/video.mp4`;
    const previous = randomBytes(1000);
    await storage.put(key, previous, 'video/mp4');
    const error = new Error('the client went away');
    await expect(storage.putStream(key, failingAfter(randomBytes(bytes), error), 'video/mp4')).rejects.toBe(error);
    expect(await storage.get(key)).toEqual(previous);
  });

  it.each([
    ['an empty', 0],
    ['a 300 KiB', 300 * 1024],
    ['a 7 MiB', 7 * MiB],
  ])('stores %s local file', async (_size, bytes) => {
    const key = `${folder()}/notes.pdf`;
    const source = path.join(tempDir('source'), 'notes.pdf');
    const data = randomBytes(bytes);
    await writeFile(source, data);
    await storage.putFile(key, source, 'application/pdf');
    expect(sha256((await storage.get(key))!)).toBe(sha256(data));
  });

  it('answers null for a missing object, and fails to download it without creating the file', async () => {
    const dir = folder();
    expect(await storage.get(`${dir}/missing.m3u8`)).toBeNull();
    const file = path.join(tempDir('download'), 'missing.m3u8');
    await expect(storage.download(`${dir}/missing.m3u8`, file)).rejects.toThrow();
    expect(existsSync(file)).toBe(false);
  });

  it('deletes exactly the objects in a folder, and says how many', async () => {
    const dir = folder();
    const inside = [`${dir}/videos/a/master.m3u8`, `${dir}/videos/a/720p/seg-0.ts`, `${dir}/videos/a/720p/seg-1.ts`, `${dir}/videos/a/360p/deep/seg-0.ts`];
    const outside = [`${dir}/videos/ab/x`, `${dir}/videos/b/a/x`, `${dir}/videos/a.ts`, `${dir}/videos/x/videos/a/y`];
    for (const key of [...inside, ...outside]) await storage.put(key, Buffer.from(key), 'application/octet-stream');
    await expect(storage.deletePrefix(`${dir}/videos/a/`)).resolves.toBe(inside.length);
    expect((await subject.keys(`${dir}/`)).sort()).toEqual([...outside].sort());
    await expect(storage.deletePrefix(`${dir}/videos/a/`)).resolves.toBe(0);
  });

  it('deletes a folder named without its trailing slash as the same folder', async () => {
    const dir = folder();
    for (const key of [`${dir}/a/x`, `${dir}/ab/x`, `${dir}/abc`]) await storage.put(key, Buffer.from(key), 'application/octet-stream');
    await expect(storage.deletePrefix(`${dir}/a`)).resolves.toBe(1);
    expect((await subject.keys(`${dir}/`)).sort()).toEqual([`${dir}/ab/x`, `${dir}/abc`]);
  });

  it('keeps an object whose key is the folder name itself', async () => {
    const dir = folder();
    await storage.put(`${dir}/a`, Buffer.from('not a folder'), 'text/plain');
    await expect(storage.deletePrefix(`${dir}/a/`)).resolves.toBe(0);
    expect(await storage.get(`${dir}/a`)).toEqual(Buffer.from('not a folder'));
  });

  it('deletes a folder of more than one listing page (1000 keys on S3)', async () => {
    const dir = folder();
    const count = 1010;
    const keys = Array.from({ length: count }, (_, i) => `${dir}/hls/seg-${String(i).padStart(5, '0')}.ts`);
    // twenty at a time: a thousand requests at once would each open a connection
    for (let i = 0; i < keys.length; i += 20) await Promise.all(keys.slice(i, i + 20).map((key) => storage.put(key, Buffer.from('x'), 'video/mp2t')));
    await storage.put(`${dir}/kept`, Buffer.from('x'), 'video/mp2t');
    await expect(storage.deletePrefix(`${dir}/hls/`)).resolves.toBe(count);
    expect(await subject.keys(`${dir}/`)).toEqual([`${dir}/kept`]);
  });

  describe.each(['../x', '/abs', 'a//b', 'a/../../b', ''])('refuses the key %j', (key) => {
    const source = path.join(tempDir('source'), 'file');
    beforeAll(() => writeFile(source, 'x'));
    it.each<[string, () => Promise<unknown>]>([
      ['put', () => storage.put(key, Buffer.from('x'), 'text/plain')],
      ['putStream', () => storage.putStream(key, chunked(Buffer.from('x'), 1), 'text/plain')],
      ['putFile', () => storage.putFile(key, source, 'text/plain')],
      ['get', () => storage.get(key)],
      ['download', () => storage.download(key, path.join(tempDir('download'), 'file'))],
      ['delete', () => storage.delete(key)],
      ['deletePrefix', () => storage.deletePrefix(`${key}/`)],
      ['url', () => storage.url(key, { ttlSeconds: 60 })],
    ])('in %s', async (_method, call) => {
      await expect(call()).rejects.toThrow(/invalid storage key/);
    });
  });
});

describe('LocalStorage', () => {
  let subject: Awaited<ReturnType<typeof localSubject>>;
  beforeAll(async () => {
    subject = await localSubject();
  });

  const partials = async () => (await readdir(subject.root, { recursive: true })).filter((name) => name.endsWith('.partial'));

  it('leaves no half-written file behind when a streamed upload fails, beside a previous object or not', async () => {
    const error = new Error('the client went away');
    await subject.storage.put('videos/kept.mp4', Buffer.from('previous'), 'video/mp4');
    await expect(subject.storage.putStream('videos/kept.mp4', failingAfter(randomBytes(MiB), error), 'video/mp4')).rejects.toBe(error);
    await expect(subject.storage.putStream('videos/new.mp4', failingAfter(randomBytes(MiB), error), 'video/mp4')).rejects.toBe(error);
    expect(await partials()).toEqual([]);
    expect(await subject.keys('videos/')).toEqual(['videos/kept.mp4']);
  });

  it('writes nothing outside its folder for a key that tries to leave it', async () => {
    const parent = path.dirname(subject.root);
    for (const key of ['../outside', '../../outside', 'a/../../outside']) {
      await expect(subject.storage.put(key, Buffer.from('x'), 'text/plain')).rejects.toThrow(/invalid storage key/);
      await expect(subject.storage.putStream(key, chunked(Buffer.from('x'), 1), 'text/plain')).rejects.toThrow(/invalid storage key/);
      await expect(subject.storage.deletePrefix(`${key}/`)).rejects.toThrow(/invalid storage key/);
    }
    expect(await readdir(parent)).toEqual(['root']);
  });
});

describe('S3Storage', () => {
  it('fails and lets go of the source when the bucket cannot be reached', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const storage = new S3Storage({
      bucket: 'parley-media',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      accessKeyId: 'x',
      secretAccessKey: 'x',
    });
    // longer than the parts the upload reads ahead, so the source is still mid-way when it fails
    const source = chunked(Buffer.alloc(40 * MiB), 64 * 1024);
    try {
      await expect(storage.putStream('videos/a.mp4', source, 'video/mp4')).rejects.toThrow();
      expect(source.readableEnded).toBe(false);
      expect(source.destroyed).toBe(true);
    } finally {
      storage.close();
    }
  });
});
