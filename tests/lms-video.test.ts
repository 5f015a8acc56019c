import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalStorage } from '../src/infra/storage.js';
import { buildTestApp, separateDatabaseUrl, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin } from './helpers/payments.js';
import { brokenFfmpeg, ffprobe, gatedFfmpeg, harness, hasFfmpeg, makeClip, segmentsOf, variantsOf, work } from './helpers/video.js';

describe.skipIf(!hasFfmpeg)('lesson videos on the embedded storage', () => {
  const clock = manualClock();
  let t: TestApp;
  let admin: Pair;
  const h = harness(() => t);
  let clip720: string;
  let clip480: string;
  beforeAll(async () => {
    clip720 = makeClip('clip-720p.mp4', 1280, 720, 3);
    clip480 = makeClip('clip-480p.mp4', 854, 480, 2);
    t = await buildTestApp({ clock, env: { APP_URL: 'http://parley.test', VIDEO_MAX_BYTES: String(4 * 1024 * 1024) } });
  }, 60_000);
  afterAll(() => t.close());
  beforeEach(async () => {
    await truncateAll(t);
    admin = await registerAdmin(t);
  });

  it('transcodes a 720p upload into 720p, 480p and 360p HLS that plays, segment by segment, through the signed URL', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    const uploaded = await h.upload(admin, lessonId, readFileSync(clip720));
    expect(uploaded.statusCode).toBe(202);
    expect(uploaded.json()).toMatchObject({
      lessonId,
      videoStatus: 'uploaded',
      jobId: expect.stringMatching(/^lms\.transcode:/),
      sizeBytes: readFileSync(clip720).length,
    });
    const storage = t.container.storage as LocalStorage;
    expect(existsSync(storage.pathOf(`videos/courses/${course.id}/${lessonId}/original.mp4`))).toBe(true);

    const ready = await h.videoStatus(admin, course.id, lessonId, 'ready');
    expect(ready).toMatchObject({ videoProgress: 100, durationSeconds: 3, videoError: null, videoJobId: uploaded.json().jobId });
    const job = await eventually(
      async () => (await injectAs(t.app, admin, { method: 'GET', url: `/admin/jobs/${uploaded.json().jobId}` })).json<{ state: string }>(),
      (current) => current.state === 'completed',
    );
    expect(job).toMatchObject({ progress: 100, attempts: 1 });

    // the poster frame: a 16:9 WebP
    const poster = await h.fetchOwn(ready.thumbnailUrl!);
    expect(poster.statusCode).toBe(200);
    expect(await sharp(poster.rawPayload).metadata()).toMatchObject({ format: 'webp', width: 1280, height: 720 });

    // the uploader is told
    const inbox = await eventually(
      async () =>
        (await injectAs(t.app, admin, { method: 'GET', url: '/notifications' })).json<{ items: Array<{ type: string; data: Record<string, string> }> }>().items,
      (items) => items.some((item) => item.type === 'course_ready'),
    );
    expect(inbox.find((item) => item.type === 'course_ready')!.data).toMatchObject({ lessonId, courseId: course.id });

    const student = await register(t.app);
    expect((await injectAs(t.app, student, { method: 'POST', url: `/courses/${course.id}/enroll` })).statusCode).toBe(201);
    const granted = await h.videoUrl(student, lessonId);
    expect(granted.statusCode).toBe(200);
    const { url, expiresAt } = granted.json<{ url: string; expiresAt: string }>();
    expect(new Date(expiresAt).getTime()).toBe(Math.floor(clock.now().getTime() / 1000) * 1000 + 3 * 3600 * 1000);

    const master = await h.fetchOwn(url);
    expect(master.statusCode).toBe(200);
    expect(master.headers['content-type']).toContain('application/vnd.apple.mpegurl');
    const streams = master.body.split('\n').filter((line) => line.startsWith('#EXT-X-STREAM-INF'));
    expect(streams).toHaveLength(3);
    expect(streams.map((line) => /RESOLUTION=(\d+x\d+)/.exec(line)![1])).toEqual(['1280x720', '854x480', '640x360']);
    for (const line of streams) expect(line).toMatch(/BANDWIDTH=\d+.*CODECS="avc1\.[0-9a-f]+,mp4a\.40\.2"/);

    for (const [index, variantUrl] of variantsOf(url, master.body).entries()) {
      const variant = await h.fetchOwn(variantUrl);
      expect(variant.statusCode).toBe(200);
      const segments = segmentsOf(variant.body);
      expect(segments.length).toBeGreaterThan(0);
      const bytes: Buffer[] = [];
      for (const segmentUrl of segments) {
        expect(segmentUrl).toMatch(/^http:\/\/parley\.test\/storage\/videos\/courses\/.+\/hls\/\d+p\/segment_\d{3}\.ts\?expires=\d+&signature=/);
        const segment = await h.fetchOwn(segmentUrl);
        expect(segment.statusCode).toBe(200);
        expect(segment.headers['content-type']).toBe('video/mp2t');
        bytes.push(segment.rawPayload);
      }
      const file = path.join(work, `rendition-${index}.ts`);
      writeFileSync(file, Buffer.concat(bytes));
      const probed = ffprobe(file);
      expect(probed.height).toBe([720, 480, 360][index]);
      expect(probed.codecs).toEqual(['aac', 'h264']);
    }
  });

  it('keeps the video to the enrolled: 401 anonymous, 403 not_enrolled, 403 on a guessed or tampered path, 403 once expired', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 1500, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    expect((await h.upload(admin, lessonId, readFileSync(clip480))).statusCode).toBe(202);
    await h.videoStatus(admin, course.id, lessonId, 'ready');

    const outsider = await register(t.app);
    const refused = await h.videoUrl(outsider, lessonId);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('not_enrolled');
    expect((await h.videoUrl(null, lessonId)).statusCode).toBe(401);

    const segmentPath = `/storage/videos/courses/${course.id}/${lessonId}/hls/480p/segment_000.ts`;
    expect(existsSync((t.container.storage as LocalStorage).pathOf(segmentPath.slice('/storage/'.length)))).toBe(true);
    expect((await t.app.inject({ method: 'GET', url: segmentPath })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: `${segmentPath}?expires=99999999999&signature=guess` })).statusCode).toBe(403);

    // an admin's own URL, tampered with: another lesson, another holder, a later expiry
    const { url } = (await h.videoUrl(admin, lessonId)).json<{ url: string }>();
    const [, , , , token] = new URL(url).pathname.split('/');
    const [expires, holder, signature] = token!.split('.');
    const otherLesson = (await h.addLesson(admin, course.id)).id;
    const tampered = [
      url.replace(lessonId, otherLesson),
      url.replace(token!, `${expires}.e-${outsider.user.id}.${signature}`),
      url.replace(token!, `${Number(expires) + 3600}.${holder}.${signature}`),
      url.replace(token!, 'not-a-token'),
    ];
    for (const bad of tampered) expect([bad, (await h.fetchOwn(bad)).statusCode]).toEqual([bad, 403]);
    expect((await h.fetchOwn(url)).statusCode).toBe(200);
    const variant = await h.fetchOwn(variantsOf(url, (await h.fetchOwn(url)).body)[0]!);
    const segmentUrl = segmentsOf(variant.body)[0]!;
    expect((await h.fetchOwn(segmentUrl)).statusCode).toBe(200);

    clock.advance(3 * 3600 * 1000 + 1000);
    expect((await h.fetchOwn(url)).statusCode).toBe(403);
    expect((await h.fetchOwn(segmentUrl)).statusCode).toBe(403);
  });

  it('plays a free preview for anyone, signed in or not, while the course is published', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 1500, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id, { freePreview: true });
    expect((await h.upload(admin, lessonId, readFileSync(clip480))).statusCode).toBe(202);
    await h.videoStatus(admin, course.id, lessonId, 'ready');
    const anonymous = await h.videoUrl(null, lessonId);
    expect(anonymous.statusCode).toBe(200);
    const { url } = anonymous.json<{ url: string }>();
    expect((await h.fetchOwn(url)).body).toContain('RESOLUTION=854x480');
    expect((await injectAs(t.app, admin, { method: 'PATCH', url: `/courses/${course.id}`, payload: { published: false } })).statusCode).toBe(200);
    expect((await h.fetchOwn(url)).statusCode).toBe(403);
  });

  it('answers 409 video_not_ready before the video plays, and refuses what is not a video or too big', async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    const early = await h.videoUrl(admin, lessonId);
    expect(early.statusCode).toBe(409);
    expect(early.json().error).toMatchObject({ code: 'video_not_ready', details: { videoStatus: 'none' } });

    const notVideo = await h.upload(admin, lessonId, Buffer.from('%PDF-1.4 this is a document, not a film'.repeat(20)), 'sneaky.mp4');
    expect(notVideo.statusCode).toBe(400);
    expect(notVideo.json().error.code).toBe('invalid_video');
    const tooBig = await h.upload(admin, lessonId, Buffer.concat([readFileSync(clip480).subarray(0, 64), Buffer.alloc(4 * 1024 * 1024)]));
    expect(tooBig.statusCode).toBe(413);
    const declared = await injectAs(t.app, admin, {
      method: 'POST',
      url: `/lessons/${lessonId}/video`,
      headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(5 * 1024 * 1024) },
      payload: '--x--',
    });
    expect(declared.statusCode).toBe(413);
    expect((await h.lesson(admin, course.id, lessonId)).videoStatus).toBe('none');
    const storage = t.container.storage as LocalStorage;
    expect(existsSync(storage.pathOf(`videos/courses/${course.id}/${lessonId}`))).toBe(false);

    const student = await register(t.app);
    expect((await h.upload(student, lessonId, readFileSync(clip480))).statusCode).toBe(403);
    expect((await h.upload(admin, randomUUID(), readFileSync(clip480))).statusCode).toBe(404);
  });

  it('a refund takes the video back: the URL handed out stops at its next playlist load', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 2500, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    expect((await h.upload(admin, lessonId, readFileSync(clip480))).statusCode).toBe(202);
    await h.videoStatus(admin, course.id, lessonId, 'ready');

    const buyer = await register(t.app);
    const started = await checkout(t.app, buyer, course.id);
    const { orderId, url: payUrl } = started.json<{ orderId: string; url: string }>();
    const pay = await t.app.inject({
      method: 'POST',
      url: `${new URL(payUrl).pathname}/complete`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: '',
    });
    expect(pay.statusCode).toBe(200);
    await eventually(
      () => order(t.app, buyer, orderId),
      (current) => current.status === 'paid',
    );
    const granted = await h.videoUrl(buyer, lessonId);
    expect(granted.statusCode).toBe(200);
    const { url } = granted.json<{ url: string }>();
    expect((await h.fetchOwn(url)).statusCode).toBe(200);

    const refund = await injectAs(t.app, admin, {
      method: 'POST',
      url: `/admin/orders/${orderId}/refund`,
      headers: { 'idempotency-key': randomUUID() },
      payload: {},
    });
    expect(refund.statusCode).toBe(202);
    await eventually(
      () => order(t.app, buyer, orderId),
      (current) => current.status === 'refunded',
    );
    expect((await h.fetchOwn(url)).statusCode).toBe(403);
    expect((await h.videoUrl(buyer, lessonId)).json().error.code).toBe('not_enrolled');
  });

  it('deleting a lesson deletes its video files in the background', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    expect((await h.upload(admin, lessonId, readFileSync(clip480))).statusCode).toBe(202);
    const ready = await h.videoStatus(admin, course.id, lessonId, 'ready');
    const storage = t.container.storage as LocalStorage;
    const folder = storage.pathOf(`videos/courses/${course.id}/${lessonId}`);
    const poster = storage.pathOf(new URL(ready.thumbnailUrl!).pathname.slice('/storage/'.length));
    expect(existsSync(folder) && existsSync(poster)).toBe(true);
    expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/lessons/${lessonId}` })).statusCode).toBe(204);
    await eventually(
      () => existsSync(folder) || existsSync(poster),
      (present) => !present,
    );
  });
});

describe.skipIf(!hasFfmpeg)('transcoding failures and replacements', () => {
  let t: TestApp | undefined;
  const h = harness(() => t!);
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('retries a failing ffmpeg, then marks the video failed with the reason and tells the uploader', { timeout: 90_000 }, async () => {
    t = await buildTestApp({ env: { FFMPEG_PATH: brokenFfmpeg(), VIDEO_TRANSCODE_RETRY_DELAY: '50ms', DATABASE_URL: await separateDatabaseUrl() } });
    const admin = await registerAdmin(t);
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    const uploaded = await h.upload(admin, lessonId, readFileSync(makeClip('short.mp4', 320, 240, 1)));
    expect(uploaded.statusCode).toBe(202);
    const failed = await h.videoStatus(admin, course.id, lessonId, 'failed');
    expect(failed.videoError).toContain('simulated encoder crash');
    const job = await eventually(
      async () => (await injectAs(t!.app, admin, { method: 'GET', url: `/admin/jobs/${uploaded.json().jobId}` })).json<{ state: string }>(),
      (current) => current.state === 'dead',
    );
    expect(job).toMatchObject({ attempts: 3, lastError: expect.stringContaining('simulated encoder crash') });
    const inbox = await eventually(
      async () => (await injectAs(t!.app, admin, { method: 'GET', url: '/notifications' })).json<{ items: Array<{ type: string; title: string }> }>().items,
      (items) => items.some((item) => item.title === 'Video failed'),
    );
    expect(inbox.filter((item) => item.title === 'Video failed')).toHaveLength(1);
    expect((await h.videoUrl(admin, lessonId)).json().error).toMatchObject({ code: 'video_not_ready', details: { videoStatus: 'failed' } });
  });

  it('a new upload stops the running transcoding of the one it replaces', { timeout: 90_000 }, async () => {
    const gate = gatedFfmpeg();
    t = await buildTestApp({ env: { FFMPEG_PATH: gate.path, DATABASE_URL: await separateDatabaseUrl() } });
    const admin = await registerAdmin(t);
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    const first = await h.upload(admin, lessonId, readFileSync(makeClip('first.mp4', 1280, 720, 2)));
    await h.videoStatus(admin, course.id, lessonId, 'transcoding');
    const second = await h.upload(admin, lessonId, readFileSync(makeClip('second.mp4', 640, 360, 2)));
    expect(second.statusCode).toBe(202);
    await gate.open(); // the first run goes on, sees at its first progress that it was replaced, and stops
    await eventually(
      async () => (await injectAs(t!.app, admin, { method: 'GET', url: `/admin/jobs/${first.json().jobId}` })).json<{ state: string }>().state,
      (state) => state === 'completed',
    );
    await gate.open();
    const ready = await h.videoStatus(admin, course.id, lessonId, 'ready');
    expect(ready.videoJobId).toBe(second.json().jobId);
    const { url } = (await h.videoUrl(admin, lessonId)).json<{ url: string }>();
    const master = (await h.fetchOwn(url)).body;
    expect(master.match(/RESOLUTION=\d+x\d+/g)).toEqual(['RESOLUTION=640x360']);
    const notices = await eventually(
      async () => (await injectAs(t!.app, admin, { method: 'GET', url: '/notifications' })).json<{ items: Array<{ type: string }> }>().items,
      (items) => items.some((item) => item.type === 'course_ready'),
    );
    expect(notices.filter((item) => item.type === 'course_ready')).toHaveLength(1);
  });
});

describe('without ffmpeg', () => {
  it('stores the upload and marks the lesson transcoding_unavailable', async () => {
    const t = await buildTestApp({ env: { FFMPEG_PATH: path.join(work, 'no-such-ffmpeg'), DATABASE_URL: await separateDatabaseUrl() } });
    try {
      const h = harness(() => t);
      const admin = await registerAdmin(t);
      const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
      const { id: lessonId } = await h.addLesson(admin, course.id);
      // the first bytes of an MP4: its ftyp box
      const mp4 = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom', 'latin1'), Buffer.alloc(2048, 1)]);
      const uploaded = await h.upload(admin, lessonId, mp4);
      expect(uploaded.statusCode).toBe(202);
      expect(uploaded.json()).toMatchObject({ videoStatus: 'transcoding_unavailable', jobId: null, sizeBytes: mp4.length });
      expect((await h.lesson(admin, course.id, lessonId)).videoStatus).toBe('transcoding_unavailable');
      const stored = readFileSync((t.container.storage as LocalStorage).pathOf(`videos/courses/${course.id}/${lessonId}/original.mp4`));
      expect(stored.equals(mp4)).toBe(true);
    } finally {
      await t.close();
    }
  });
});
