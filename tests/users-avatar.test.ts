import { existsSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertValidKey, type LocalStorage } from '../src/infra/storage.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, PASSWORD, register } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { multipartFile } from './helpers/multipart.js';
import { startS3 } from './helpers/s3.js';

const image = (format: 'png' | 'jpeg' | 'webp', width = 800, height = 600) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 40 } } })
    .toFormat(format)
    .toBuffer();

/** A valid PNG header claiming 20000 x 20000 pixels: a decompression bomb's shape, a few bytes long. */
function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function upload(t: TestApp, token: string, content: Buffer, filename: string, contentType: string) {
  const { payload, headers } = multipartFile(content, filename, contentType);
  return injectAs(t.app, token, { method: 'POST', url: '/users/me/avatar', headers, payload });
}

async function avatarKey(t: TestApp, userId: string): Promise<string | null> {
  const [row] = await t.container.db.query('SELECT avatar_key FROM profiles WHERE user_id = $1', [userId]);
  return row.avatar_key;
}

describe('avatars on the embedded storage', () => {
  const clock = manualClock();
  let t: TestApp;
  let storage: LocalStorage;
  beforeAll(async () => {
    t = await buildTestApp({ clock, env: { APP_URL: 'http://parley.test' } });
    storage = t.container.storage as LocalStorage;
  });
  afterAll(() => t.close());

  const fetchSigned = (url: string) => t.app.inject({ method: 'GET', url: url.replace('http://parley.test', '') });

  it.each([
    ['png', 'image/png'],
    ['jpeg', 'image/jpeg'],
    ['webp', 'image/webp'],
  ] as const)('turns a %s into a 400x400 WebP at avatars/{userId}/', async (format, type) => {
    const account = await register(t.app);
    const res = await upload(t, account.accessToken, await image(format), `me.${format}`, type);
    expect(res.statusCode).toBe(200);
    const key = await avatarKey(t, account.user.id);
    expect(key).toMatch(new RegExp(`^avatars/${account.user.id}/\\d+-[0-9a-f]{8}\\.webp$`));
    const served = await fetchSigned(res.json().profile.avatarUrl);
    expect(served.statusCode).toBe(200);
    expect(served.headers['content-type']).toBe('image/webp');
    expect(await sharp(served.rawPayload).metadata()).toMatchObject({ format: 'webp', width: 400, height: 400 });
    expect(res.json().profile.version).toBe(2);
  });

  it('deletes the previous avatar once the new one is stored', async () => {
    const account = await register(t.app);
    await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
    const first = (await avatarKey(t, account.user.id))!;
    await upload(t, account.accessToken, await image('jpeg'), 'b.jpg', 'image/jpeg');
    const second = (await avatarKey(t, account.user.id))!;
    expect(second).not.toBe(first);
    expect(existsSync(storage.pathOf(first))).toBe(false);
    expect(existsSync(storage.pathOf(second))).toBe(true);
  });

  it('judges the type by content: a text file named .png is refused and the old avatar stays', async () => {
    const account = await register(t.app);
    await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
    const before = await avatarKey(t, account.user.id);
    const res = await upload(t, account.accessToken, Buffer.from('definitely not an image\n'.repeat(100)), 'evil.png', 'image/png');
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('unsupported_media_type');
    expect(await avatarKey(t, account.user.id)).toBe(before);
    expect(existsSync(storage.pathOf(before!))).toBe(true);
  });

  it('refuses a 6 MB upload with 413', async () => {
    const account = await register(t.app);
    const big = Buffer.concat([await image('png'), Buffer.alloc(6 * 1024 * 1024, 7)]);
    const res = await upload(t, account.accessToken, big, 'big.png', 'image/png');
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
    expect(await avatarKey(t, account.user.id)).toBeNull();
  });

  it('refuses a 20000 x 20000 image without decoding it', async () => {
    const account = await register(t.app);
    const res = await upload(t, account.accessToken, pngClaiming(20_000, 20_000), 'bomb.png', 'image/png');
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('image_too_large');
  });

  it('refuses a corrupt image with 422', async () => {
    const account = await register(t.app);
    const png = await image('png');
    const res = await upload(t, account.accessToken, png.subarray(0, 40), 'cut.png', 'image/png');
    expect(res.statusCode).toBe(422);
  });

  it('removes the avatar and its file', async () => {
    const account = await register(t.app);
    await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
    const key = (await avatarKey(t, account.user.id))!;
    const res = await injectAs(t.app, account, { method: 'DELETE', url: '/users/me/avatar' });
    expect(res.statusCode).toBe(204);
    expect(await avatarKey(t, account.user.id)).toBeNull();
    expect(existsSync(storage.pathOf(key))).toBe(false);
  });

  it('deletes the avatar file with the account', async () => {
    const account = await register(t.app);
    await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
    const key = (await avatarKey(t, account.user.id))!;
    expect(existsSync(storage.pathOf(key))).toBe(true);
    const res = await injectAs(t.app, account, { method: 'DELETE', url: '/users/me', payload: { password: PASSWORD } });
    expect(res.statusCode).toBe(204);
    expect(await avatarKey(t, account.user.id)).toBeNull();
    expect(existsSync(storage.pathOf(key))).toBe(false);
  });

  it('keeps the avatar file when the account deletion is refused', async () => {
    const account = await register(t.app);
    await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
    const key = (await avatarKey(t, account.user.id))!;
    const res = await injectAs(t.app, account, { method: 'DELETE', url: '/users/me', payload: { password: 'wrong password' } });
    expect(res.statusCode).toBe(401);
    expect(existsSync(storage.pathOf(key))).toBe(true);
  });

  it('serves a file only through an untampered, unexpired link', async () => {
    const account = await register(t.app);
    const url = (await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png')).json().profile.avatarUrl as string;
    const tampered = url.replace(/signature=([^&])/, (_m, first: string) => `signature=${first === 'A' ? 'B' : 'A'}`);
    expect((await fetchSigned(tampered)).statusCode).toBe(403);
    const otherKey = url.replace(/avatars\/[^?]+/, `avatars/${account.user.id}/other.webp`);
    expect((await fetchSigned(otherKey)).statusCode).toBe(403);
    clock.advance(2 * 3_600_000);
    try {
      expect((await fetchSigned(url)).statusCode).toBe(403);
    } finally {
      clock.advance(-2 * 3_600_000);
    }
  });

  it('cannot be walked out of its folder', async () => {
    for (const key of ['../secrets', 'avatars/../../etc/passwd', '/etc/passwd', 'a\\b', 'avatars//x', '']) expect(() => assertValidKey(key)).toThrow();
    expect(() => storage.pathOf('avatars/../../../etc/passwd')).toThrow();
    const res = await t.app.inject({ method: 'GET', url: '/storage/..%2F..%2Fetc%2Fpasswd?expires=9999999999&signature=x' });
    expect(res.statusCode).toBe(403);
  });

  it('rejects an upload that is not multipart', async () => {
    const account = await register(t.app);
    const res = await injectAs(t.app, account, { method: 'POST', url: '/users/me/avatar', payload: { image: 'base64...' } });
    expect(res.statusCode).toBe(415);
  });

  it.each([
    ['no boundary', 'multipart/form-data', 'garbage'],
    ['garbage after the boundary', 'multipart/form-data; boundary=xyz', 'not multipart at all'],
    [
      'a body cut inside the file part',
      'multipart/form-data; boundary=xyz',
      '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
    ],
  ])('answers a malformed multipart body (%s) with 400 validation_failed', async (_what, contentType, payload) => {
    const account = await register(t.app);
    const res = await injectAs(t.app, account, {
      method: 'POST',
      url: '/users/me/avatar',
      headers: { 'content-type': contentType },
      payload,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });

  it('answers an upload with no file part with 400, not 413', async () => {
    const account = await register(t.app);
    const payload = '--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--xyz--\r\n';
    const res = await injectAs(t.app, account, {
      method: 'POST',
      url: '/users/me/avatar',
      headers: { 'content-type': 'multipart/form-data; boundary=xyz' },
      payload,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'validation_failed', details: { fields: [{ in: 'body', path: 'file' }] } });
  });
});

describe('avatars on S3 (a local S3-compatible server, the real AWS SDK)', () => {
  let s3: Awaited<ReturnType<typeof startS3>>;
  let endpoint: string;
  beforeAll(async () => {
    s3 = await startS3();
    endpoint = s3.endpoint;
  });
  afterAll(() => s3.close());

  const env = () => s3.env;
  const listKeys = async (prefix: string) => {
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'parley-media', Prefix: prefix }));
    client.destroy();
    return (listed.Contents ?? []).map((object) => object.Key);
  };

  it('stores the WebP in the bucket, hands out a presigned URL, and deletes the replaced object', async () => {
    const t = await buildTestApp({ env: env() });
    try {
      const account = await register(t.app);
      const first = await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
      expect(first.statusCode).toBe(200);
      const url = first.json().profile.avatarUrl as string;
      expect(url).toContain('X-Amz-Signature=');
      const fetched = await fetch(url);
      expect(fetched.status).toBe(200);
      expect((await sharp(Buffer.from(await fetched.arrayBuffer())).metadata()).format).toBe('webp');
      const firstKey = await avatarKey(t, account.user.id);
      expect(await listKeys(`avatars/${account.user.id}/`)).toEqual([firstKey]);

      await upload(t, account.accessToken, await image('webp'), 'b.webp', 'image/webp');
      expect(await listKeys(`avatars/${account.user.id}/`)).toEqual([await avatarKey(t, account.user.id)]);
    } finally {
      await t.close();
    }
  });

  it('links avatars to STORAGE_PUBLIC_URL when one is set', async () => {
    const t = await buildTestApp({ env: { ...env(), STORAGE_PUBLIC_URL: 'https://cdn.parley.test/media' } });
    try {
      const account = await register(t.app);
      const res = await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
      expect(res.json().profile.avatarUrl).toBe(`https://cdn.parley.test/media/${await avatarKey(t, account.user.id)}`);
    } finally {
      await t.close();
    }
  });

  it('keeps the old avatar when the bucket cannot be reached', async () => {
    const t = await buildTestApp({ env: env() });
    const broken = await buildTestApp({ env: { ...env(), STORAGE_ENDPOINT: 'http://127.0.0.1:9' } });
    try {
      const account = await register(t.app);
      await upload(t, account.accessToken, await image('png'), 'a.png', 'image/png');
      const before = await avatarKey(t, account.user.id);
      const res = await upload(broken, account.accessToken, await image('png'), 'b.png', 'image/png');
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('dependency_unavailable');
      expect(await avatarKey(t, account.user.id)).toBe(before);
    } finally {
      await broken.close();
      await t.close();
    }
  });
});
