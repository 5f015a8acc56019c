import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalStorage } from '../src/infra/storage.js';
import { buildTestApp, separateDatabaseUrl, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { eventually } from './helpers/jobs.js';
import { multipartFile } from './helpers/multipart.js';
import { checkout, createCourse, order, registerAdmin } from './helpers/payments.js';

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
if (!hasFfmpeg) console.warn('skipping the transcoding tests: ffmpeg is not installed (apt-get install ffmpeg)');

const work = mkdtempSync(path.join(os.tmpdir(), 'parley-video-test-'));

/** A test clip from ffmpeg's own sources: colour bars with a counter, and a tone. */
function makeClip(name: string, width: number, height: number, seconds: number): string {
  const file = path.join(work, name);
  execFileSync('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-y'],
    ...['-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=30:duration=${seconds}`],
    ...['-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', file],
  ]);
  return file;
}

/** An ffmpeg that answers -version (so it counts as installed) and fails every real run. */
function brokenFfmpeg(): string {
  const file = path.join(work, 'broken-ffmpeg');
  writeFileSync(file, '#!/bin/sh\nif [ "$1" = "-version" ]; then exec ffmpeg -version; fi\necho "simulated encoder crash" >&2\nexit 1\n');
  chmodSync(file, 0o755);
  return file;
}

/**
 * An ffmpeg whose transcoding run (the one with -progress) first waits for a line on a FIFO:
 * the test decides when it goes on, with no timing guess.
 */
function gatedFfmpeg(): { path: string; open(): Promise<void> } {
  const fifo = path.join(work, `gate-${randomUUID().slice(0, 8)}`);
  execFileSync('mkfifo', [fifo]);
  const file = path.join(work, `gated-ffmpeg-${path.basename(fifo)}`);
  writeFileSync(file, `#!/bin/sh\ncase " $* " in *" -progress "*) read go < "${fifo}";; esac\nexec ffmpeg "$@"\n`);
  chmodSync(file, 0o755);
  // opening a FIFO for writing waits for its reader: the gate opens for the run that waits
  return { path: file, open: () => writeFile(fifo, 'go\n') };
}

function ffprobe(file: string): { width: number; height: number; codecs: string[] } {
  const output = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', file]).toString()) as {
    streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number }>;
  };
  const video = output.streams.find((stream) => stream.codec_type === 'video')!;
  return { width: video.width!, height: video.height!, codecs: output.streams.map((stream) => stream.codec_name).sort() };
}

interface LessonBody {
  id: string;
  videoStatus: string;
  videoProgress: number;
  videoJobId?: string | null;
  videoError?: string | null;
  durationSeconds: number;
  thumbnailUrl: string | null;
}

/** What a test of a file needs: its app, an admin, and the calls it makes. */
function harness(get: () => TestApp) {
  const app = () => get().app;
  const upload = (admin: Pair, lessonId: string, content: Buffer, filename = 'lesson.mp4', headers: Record<string, string> = {}) => {
    const body = multipartFile(content, filename, 'video/mp4');
    return injectAs(app(), admin, { method: 'POST', url: `/lessons/${lessonId}/video`, headers: { ...body.headers, ...headers }, payload: body.payload });
  };
  const addLesson = async (admin: Pair, courseId: string, body: Record<string, unknown> = {}) => {
    const res = await injectAs(app(), admin, { method: 'POST', url: `/courses/${courseId}/lessons`, payload: { title: 'Ordering coffee', ...body } });
    expect(res.statusCode).toBe(201);
    return res.json<LessonBody>();
  };
  const lesson = async (admin: Pair, courseId: string, lessonId: string) =>
    (await injectAs(app(), admin, { method: 'GET', url: `/courses/${courseId}/lessons` }))
      .json<{ items: LessonBody[] }>()
      .items.find((item) => item.id === lessonId)!;
  const videoStatus = (admin: Pair, courseId: string, lessonId: string, wanted: string, timeoutMs = 60_000) =>
    eventually(
      () => lesson(admin, courseId, lessonId),
      (current) => current.videoStatus === wanted,
      timeoutMs,
    );
  const videoUrl = (caller: Pair | null, lessonId: string) =>
    caller
      ? injectAs(app(), caller, { method: 'GET', url: `/lessons/${lessonId}/video-url` })
      : app().inject({ method: 'GET', url: `/lessons/${lessonId}/video-url` });
  /** A URL the app itself serves, fetched in-process. */
  const fetchOwn = (url: string) => {
    const parsed = new URL(url);
    return app().inject({ method: 'GET', url: `${parsed.pathname}${parsed.search}` });
  };
  return { upload, addLesson, lesson, videoStatus, videoUrl, fetchOwn };
}

/** The variant playlists a master lists, as URLs resolved against it. */
function variantsOf(masterUrl: string, master: string): string[] {
  return master
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => new URL(line, masterUrl).toString());
}

const segmentsOf = (playlist: string) => playlist.split('\n').filter((line) => line && !line.startsWith('#'));

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
