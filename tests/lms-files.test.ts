import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStorage } from '../src/infra/storage.js';
import { sanitizeFileName } from '../src/modules/lms/files.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { multipartFile } from './helpers/multipart.js';
import { createCourse, registerAdmin } from './helpers/payments.js';

const THUMBNAIL_MAX_BYTES = 256 * 1024;
const ATTACHMENT_MAX_BYTES = 64 * 1024;
const MAX_PIXELS = 4_000_000;

const clock = manualClock();
let t: TestApp;
let storage: LocalStorage;
let admin: Pair;
beforeAll(async () => {
  t = await buildTestApp({
    clock,
    env: {
      APP_URL: 'http://parley.test',
      THUMBNAIL_MAX_BYTES: String(THUMBNAIL_MAX_BYTES),
      ATTACHMENT_MAX_BYTES: String(ATTACHMENT_MAX_BYTES),
      AVATAR_MAX_PIXELS: String(MAX_PIXELS),
    },
  });
  storage = t.container.storage as LocalStorage;
  admin = await registerAdmin(t);
});
afterAll(() => t.close());

const image = (format: 'png' | 'jpeg' | 'webp', width = 1600, height = 1000) =>
  sharp({ create: { width, height, channels: 3, background: { r: 30, g: 120, b: 200 } } })
    .toFormat(format)
    .toBuffer();

/** The smallest well-formed PDF: a catalog with no pages. */
const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n',
  'latin1',
);

const upload = (caller: Pair, url: string, content: Buffer, filename: string, contentType: string) => {
  const { payload, headers } = multipartFile(content, filename, contentType);
  return injectAs(t.app, caller, { method: 'POST', url, headers, payload });
};
const uploadThumbnail = (courseId: string, content: Buffer, caller = admin) =>
  upload(caller, `/courses/${courseId}/thumbnail`, content, 'cover.png', 'image/png');
const uploadAttachment = (lessonId: string, content: Buffer = PDF, filename = 'worksheet.pdf', caller = admin) =>
  upload(caller, `/lessons/${lessonId}/attachments`, content, filename, 'application/pdf');

/** A signed URL the API handed out, fetched from the app itself (the embedded storage serves it). */
const fetchSigned = (url: string) => t.app.inject({ method: 'GET', url: url.replace('http://parley.test', '') });
const as = (caller: Pair | null, method: 'GET' | 'DELETE', url: string) => (caller ? injectAs(t.app, caller, { method, url }) : t.app.inject({ method, url }));

async function thumbnailKey(courseId: string): Promise<string | null> {
  const [row] = await t.container.db.query('SELECT thumbnail_key FROM courses WHERE id = $1', [courseId]);
  return row.thumbnail_key;
}

async function addLesson(courseId: string, body: Record<string, unknown> = {}): Promise<{ id: string }> {
  const res = await injectAs(t.app, admin, { method: 'POST', url: `/courses/${courseId}/lessons`, payload: { title: 'A lesson', ...body } });
  expect(res.statusCode).toBe(201);
  return res.json();
}

describe('course thumbnails', () => {
  it('turns the upload into a 1280x720 WebP under thumbnails/courses/{courseId}/, shown on every course view', async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const res = await uploadThumbnail(course.id, await image('png'));
    expect(res.statusCode).toBe(200);
    const key = await thumbnailKey(course.id);
    expect(key).toMatch(new RegExp(`^thumbnails/courses/${course.id}/\\d+-[0-9a-f]{8}\\.webp$`));
    expect(res.json()).toMatchObject({ id: course.id, thumbnailUrl: expect.stringContaining(key!) });

    const served = await fetchSigned(res.json().thumbnailUrl);
    expect(served.statusCode).toBe(200);
    expect(served.headers['content-type']).toBe('image/webp');
    expect(await sharp(served.rawPayload).metadata()).toMatchObject({ format: 'webp', width: 1280, height: 720 });

    const student = await register(t.app);
    expect((await injectAs(t.app, student, { method: 'POST', url: `/courses/${course.id}/enroll` })).statusCode).toBe(201);
    const views = [
      (await t.app.inject({ method: 'GET', url: `/courses/${course.id}` })).json(),
      (await t.app.inject({ method: 'GET', url: '/courses?limit=100' })).json().items.find((item: { id: string }) => item.id === course.id),
      (await injectAs(t.app, student, { method: 'GET', url: '/my/courses' })).json().items[0].course,
      (await injectAs(t.app, admin, { method: 'PATCH', url: `/courses/${course.id}`, payload: { title: 'Renamed' } })).json(),
    ];
    for (const view of views) expect(view.thumbnailUrl).toContain(key);
    expect((await createCourse(t.app, admin)) as unknown).toMatchObject({ thumbnailUrl: null });
  });

  it('deletes the previous file once the new one is in place', async () => {
    const course = await createCourse(t.app, admin);
    expect((await uploadThumbnail(course.id, await image('jpeg'))).statusCode).toBe(200);
    const first = (await thumbnailKey(course.id))!;
    expect(existsSync(storage.pathOf(first))).toBe(true);
    expect((await uploadThumbnail(course.id, await image('webp', 900, 1600))).statusCode).toBe(200);
    const second = (await thumbnailKey(course.id))!;
    expect(second).not.toBe(first);
    expect(existsSync(storage.pathOf(first))).toBe(false);
    expect(existsSync(storage.pathOf(second))).toBe(true);
  });

  it('judges the type by content: a text file is refused with 415 and the thumbnail stays', async () => {
    const course = await createCourse(t.app, admin);
    await uploadThumbnail(course.id, await image('png'));
    const before = await thumbnailKey(course.id);
    const res = await uploadThumbnail(course.id, Buffer.from('not an image at all\n'.repeat(50)));
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('unsupported_media_type');
    expect(await thumbnailKey(course.id)).toBe(before);
    expect(existsSync(storage.pathOf(before!))).toBe(true);
  });

  it('refuses a corrupt image, an image of too many pixels, and a file over THUMBNAIL_MAX_BYTES', async () => {
    const course = await createCourse(t.app, admin);
    const corrupt = await uploadThumbnail(course.id, (await image('png')).subarray(0, 40));
    expect([corrupt.statusCode, corrupt.json().error.code]).toEqual([422, 'invalid_image']);
    const huge = await uploadThumbnail(course.id, await image('png', 2500, 2000));
    expect([huge.statusCode, huge.json().error.code]).toEqual([422, 'image_too_large']);
    const big = await uploadThumbnail(course.id, Buffer.concat([await image('png'), Buffer.alloc(THUMBNAIL_MAX_BYTES, 7)]));
    expect([big.statusCode, big.json().error.code]).toEqual([413, 'payload_too_large']);
    expect(await thumbnailKey(course.id)).toBeNull();
  });

  it('is for admins, about courses that exist', async () => {
    const course = await createCourse(t.app, admin);
    const student = await register(t.app);
    expect((await uploadThumbnail(course.id, await image('png'), student)).statusCode).toBe(403);
    expect((await as(student, 'DELETE', `/courses/${course.id}/thumbnail`)).statusCode).toBe(403);
    expect((await uploadThumbnail(randomUUID(), await image('png'))).statusCode).toBe(404);
    expect((await as(admin, 'DELETE', `/courses/${randomUUID()}/thumbnail`)).statusCode).toBe(404);
    expect((await as(admin, 'DELETE', `/courses/${course.id}`)).statusCode).toBe(204);
    expect((await uploadThumbnail(course.id, await image('png'))).statusCode).toBe(404);
  });

  it('removes the thumbnail and its file', async () => {
    const course = await createCourse(t.app, admin);
    await uploadThumbnail(course.id, await image('png'));
    const key = (await thumbnailKey(course.id))!;
    expect((await as(admin, 'DELETE', `/courses/${course.id}/thumbnail`)).statusCode).toBe(204);
    expect(await thumbnailKey(course.id)).toBeNull();
    expect(existsSync(storage.pathOf(key))).toBe(false);
    expect((await t.app.inject({ method: 'GET', url: `/courses/${course.id}` })).json().thumbnailUrl).toBeNull();
    expect((await as(admin, 'DELETE', `/courses/${course.id}/thumbnail`)).statusCode).toBe(204);
  });
});

describe('lesson attachments', () => {
  const attachmentRows = async (lessonId: string) =>
    t.container.db.query('SELECT id, file_name, size_bytes, storage_key FROM lesson_attachments WHERE lesson_id = $1', [lessonId]);

  /** A paid published course: a locked lesson and a free preview. */
  async function paidCourse() {
    const course = await createCourse(t.app, admin);
    const locked = await addLesson(course.id);
    const preview = await addLesson(course.id, { freePreview: true });
    return { course, locked, preview };
  }

  it('stores the PDF privately at attachments/courses/{courseId}/{lessonId}/{id}.pdf and lists it', async () => {
    const { course, locked } = await paidCourse();
    const res = await uploadAttachment(locked.id);
    expect(res.statusCode).toBe(201);
    const attachment = res.json();
    expect(attachment).toEqual({ id: expect.any(String), fileName: 'worksheet.pdf', sizeBytes: PDF.length, createdAt: expect.any(String) });
    const key = `attachments/courses/${course.id}/${locked.id}/${attachment.id}.pdf`;
    expect(await attachmentRows(locked.id)).toEqual([{ id: attachment.id, file_name: 'worksheet.pdf', size_bytes: PDF.length, storage_key: key }]);
    expect(existsSync(storage.pathOf(key))).toBe(true);

    const list = await as(admin, 'GET', `/lessons/${locked.id}/attachments`);
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({ items: [attachment] });
  });

  it('opens to the enrolled and admins, to everyone in a free preview, and answers 403 not_enrolled to others (401 signed out)', async () => {
    const { locked, preview } = await paidCourse();
    const lockedFile = (await uploadAttachment(locked.id)).json();
    const previewFile = (await uploadAttachment(preview.id, PDF, 'preview.pdf')).json();
    const stranger = await register(t.app);
    for (const caller of [stranger, null]) {
      for (const url of [`/lessons/${locked.id}/attachments`, `/lessons/${locked.id}/attachments/${lockedFile.id}`]) {
        const res = await as(caller, 'GET', url);
        expect([res.statusCode, res.json().error.code]).toEqual(caller ? [403, 'not_enrolled'] : [401, 'unauthorized']);
      }
      expect((await as(caller, 'GET', `/lessons/${preview.id}/attachments`)).json()).toEqual({ items: [previewFile] });
      expect((await as(caller, 'GET', `/lessons/${preview.id}/attachments/${previewFile.id}`)).statusCode).toBe(200);
    }

    const free = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const lesson = await addLesson(free.id);
    const file = (await uploadAttachment(lesson.id)).json();
    const student = await register(t.app);
    expect((await as(student, 'GET', `/lessons/${lesson.id}/attachments`)).statusCode).toBe(403);
    expect((await injectAs(t.app, student, { method: 'POST', url: `/courses/${free.id}/enroll` })).statusCode).toBe(201);
    expect((await as(student, 'GET', `/lessons/${lesson.id}/attachments`)).json()).toEqual({ items: [file] });
  });

  it('hands out a short-lived URL that serves the PDF', async () => {
    const { locked } = await paidCourse();
    const attachment = (await uploadAttachment(locked.id)).json();
    const res = await as(admin, 'GET', `/lessons/${locked.id}/attachments/${attachment.id}`);
    expect(res.statusCode).toBe(200);
    const { url, expiresAt } = res.json();
    expect(expiresAt).toBe(new Date((Math.floor(clock.now().getTime() / 1000) + 3600) * 1000).toISOString());
    const served = await fetchSigned(url);
    expect(served.statusCode).toBe(200);
    expect(served.headers['content-type']).toBe('application/pdf');
    expect(served.rawPayload.equals(PDF)).toBe(true);
    clock.advance(3601_000);
    try {
      expect((await fetchSigned(url)).statusCode).toBe(403);
    } finally {
      clock.advance(-3601_000);
    }
  });

  it('answers 404 for an attachment asked for through another lesson, and for unknown lessons', async () => {
    const { locked, preview } = await paidCourse();
    const attachment = (await uploadAttachment(locked.id)).json();
    expect((await as(admin, 'GET', `/lessons/${preview.id}/attachments/${attachment.id}`)).statusCode).toBe(404);
    expect((await as(null, 'GET', `/lessons/${preview.id}/attachments/${attachment.id}`)).statusCode).toBe(404);
    expect((await as(admin, 'DELETE', `/lessons/${preview.id}/attachments/${attachment.id}`)).statusCode).toBe(404);
    expect((await as(admin, 'GET', `/lessons/${locked.id}/attachments/${randomUUID()}`)).statusCode).toBe(404);
    expect((await as(admin, 'GET', `/lessons/${randomUUID()}/attachments`)).statusCode).toBe(404);
    expect((await uploadAttachment(randomUUID())).statusCode).toBe(404);
    expect(await attachmentRows(locked.id)).toHaveLength(1);
  });

  it('refuses what is not a PDF (415), files over ATTACHMENT_MAX_BYTES (413) and uploads by non-admins (403), storing nothing', async () => {
    const { course, locked } = await paidCourse();
    const notPdf = await uploadAttachment(locked.id, Buffer.from('<html>not a pdf</html>'), 'fake.pdf');
    expect([notPdf.statusCode, notPdf.json().error.code]).toEqual([415, 'unsupported_media_type']);
    const big = await uploadAttachment(locked.id, Buffer.concat([PDF, Buffer.alloc(ATTACHMENT_MAX_BYTES, 0x20)]));
    expect([big.statusCode, big.json().error.code]).toEqual([413, 'payload_too_large']);
    expect((await uploadAttachment(locked.id, PDF, 'x.pdf', await register(t.app))).statusCode).toBe(403);
    expect(await attachmentRows(locked.id)).toEqual([]);
    expect(existsSync(storage.pathOf(`attachments/courses/${course.id}`))).toBe(false);
  });

  it('deletes the row and then the file', async () => {
    const { locked } = await paidCourse();
    const attachment = (await uploadAttachment(locked.id)).json();
    const [{ storage_key: key }] = await attachmentRows(locked.id);
    expect((await as(await register(t.app), 'DELETE', `/lessons/${locked.id}/attachments/${attachment.id}`)).statusCode).toBe(403);
    expect((await as(admin, 'DELETE', `/lessons/${locked.id}/attachments/${attachment.id}`)).statusCode).toBe(204);
    expect(await attachmentRows(locked.id)).toEqual([]);
    expect(existsSync(storage.pathOf(key))).toBe(false);
    expect((await as(admin, 'DELETE', `/lessons/${locked.id}/attachments/${attachment.id}`)).statusCode).toBe(404);
  });

  it('goes with its lesson', async () => {
    const { locked } = await paidCourse();
    await uploadAttachment(locked.id);
    await uploadAttachment(locked.id, PDF, 'second.pdf');
    expect(await attachmentRows(locked.id)).toHaveLength(2);
    expect((await as(admin, 'DELETE', `/lessons/${locked.id}`)).statusCode).toBe(204);
    expect(await attachmentRows(locked.id)).toEqual([]);
  });

  it('keeps a file name fit for a download: no folders, no control or direction characters, at most 255 characters', () => {
    expect(sanitizeFileName('C:\\Users\\me\\notes.pdf')).toBe('notes.pdf');
    expect(sanitizeFileName('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFileName('in\u202Efdp.exe')).toBe('infdp.exe');
    expect(sanitizeFileName('a\u0000b\r\n  c.pdf')).toBe('ab c.pdf');
    expect(sanitizeFileName('..')).toBe('attachment.pdf');
    expect(sanitizeFileName('')).toBe('attachment.pdf');
    const long = sanitizeFileName(`${'é'.repeat(300)}.pdf`);
    expect(Array.from(long)).toHaveLength(255);
    expect(long.endsWith('é.pdf')).toBe(true);
  });
});
