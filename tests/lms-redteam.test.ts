import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalStorage } from '../src/infra/storage.js';
import { buildTestApp, separateDatabaseUrl, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, type Pair } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { createCourse, registerAdmin } from './helpers/payments.js';
import { harness, hasFfmpeg, makeClip, segmentsOf, variantsOf, work } from './helpers/video.js';

/** A recording written as it streamed (as a browser's MediaRecorder does): no duration in its header. */
function streamedRecording(name: string): string {
  const file = path.join(work, name);
  const args = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30:duration=2', '-f', 'lavfi'];
  args.push('-i', 'sine=duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'matroska', 'pipe:1');
  writeFileSync(file, execFileSync('ffmpeg', args, { maxBuffer: 64 * 1024 * 1024 }));
  return file;
}

/**
 * An ffmpeg whose poster-frame run (the one writing to a pipe) says it started, then waits for a
 * line on a FIFO before it goes on.
 */
function posterGatedFfmpeg(): { path: string; started: string; open(): Promise<void> } {
  const id = randomUUID().slice(0, 8);
  const fifo = path.join(work, `poster-gate-${id}`);
  const started = path.join(work, `poster-started-${id}`);
  execFileSync('mkfifo', [fifo]);
  const file = path.join(work, `poster-gated-ffmpeg-${id}`);
  writeFileSync(file, `#!/bin/sh\ncase " $* " in *" image2pipe "*) touch "${started}"; read go < "${fifo}";; esac\nexec ffmpeg "$@"\n`);
  chmodSync(file, 0o755);
  return { path: file, started, open: () => writeFile(fifo, 'go\n') };
}

describe.skipIf(!hasFfmpeg)('lesson videos, red team', () => {
  let t: TestApp;
  let admin: Pair;
  const h = harness(() => t);
  beforeAll(async () => {
    t = await buildTestApp({ env: { APP_URL: 'http://parley.test', VIDEO_TRANSCODE_RETRY_DELAY: '50ms' } });
  }, 60_000);
  afterAll(() => t.close());
  beforeEach(async () => {
    await truncateAll(t);
    admin = await registerAdmin(t);
  });

  /** Every variant playlist and segment of a lesson's video, as its player would load them. */
  async function playEverything(lessonId: string): Promise<string> {
    const { url } = (await h.videoUrl(admin, lessonId)).json<{ url: string }>();
    const master = await h.fetchOwn(url);
    expect(master.statusCode).toBe(200);
    const variants = variantsOf(url, master.body);
    expect(variants.length).toBeGreaterThan(0);
    for (const variantUrl of variants) {
      const variant = await h.fetchOwn(variantUrl);
      expect([variantUrl, variant.statusCode]).toEqual([variantUrl, 200]);
      for (const segment of segmentsOf(variant.body)) expect((await h.fetchOwn(segment)).statusCode).toBe(200);
    }
    return master.body;
  }

  it('a tiny video (160x90) that says ready also plays', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    expect((await h.upload(admin, lessonId, readFileSync(makeClip('tiny-160x90.mp4', 160, 90, 2)))).statusCode).toBe(202);
    await h.videoStatus(admin, course.id, lessonId, 'ready');
    expect(await playEverything(lessonId)).toContain('RESOLUTION=160x90');
  });

  it('a recording streamed without a duration in its header (browser MediaRecorder style) transcodes and plays', { timeout: 90_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    expect((await h.upload(admin, lessonId, readFileSync(streamedRecording('streamed.mkv')), 'lesson.mkv')).statusCode).toBe(202);
    const settled = await eventually(
      () => h.lesson(admin, course.id, lessonId),
      (lesson) => lesson.videoStatus === 'ready' || lesson.videoStatus === 'failed',
      60_000,
    );
    expect(settled).toMatchObject({ videoStatus: 'ready', durationSeconds: 2, videoError: null });
    expect(await playEverything(lessonId)).toContain('RESOLUTION=640x360');
  });

  it("a failed video's reason does not show the server's temporary folders", { timeout: 60_000 }, async () => {
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    // an MP4's first box, then nothing ffprobe can read
    const broken = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom', 'latin1'), Buffer.alloc(4096, 7)]);
    expect((await h.upload(admin, lessonId, broken)).statusCode).toBe(202);
    const failed = await h.videoStatus(admin, course.id, lessonId, 'failed');
    expect(failed.videoError).toContain('not a video');
    expect(failed.videoError).not.toContain(os.tmpdir());
    expect(failed.videoError).not.toContain('parley-video-');
  });

  it('an upload to a lesson deleted while it streamed answers 404, not 503 "try again"', { timeout: 60_000 }, async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as net.AddressInfo;
    const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
    const { id: lessonId } = await h.addLesson(admin, course.id);
    const clip = readFileSync(makeClip('deleted-meanwhile.mp4', 640, 360, 2));
    const boundary = 'parleyboundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="lesson.mp4"\r\nContent-Type: video/mp4\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /lessons/${lessonId}/video HTTP/1.1\r\nHost: parley.test\r\nConnection: close\r\nAuthorization: Bearer ${admin.accessToken}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + clip.length + tail.length}\r\n\r\n${head}`,
    );
    socket.write(clip.subarray(0, 100_000));
    const folder = (t.container.storage as LocalStorage).pathOf(`videos/courses/${course.id}/${lessonId}`);
    // the first part of the file is being written
    await eventually(
      () => (existsSync(folder) ? readdirSync(folder) : []),
      (files) => files.some((file) => file.endsWith('.partial')),
    );
    expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/lessons/${lessonId}` })).statusCode).toBe(204);
    // the lesson's files are deleted in the background, the half-written upload with them
    await eventually(
      () => existsSync(folder),
      (present) => !present,
    );
    socket.write(Buffer.concat([clip.subarray(100_000), Buffer.from(tail)]));
    await closed;
    const [statusLine] = response.split('\r\n');
    expect(statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'not_found' } });
    expect(existsSync(folder)).toBe(false);
  });
});

describe.skipIf(!hasFfmpeg)('lesson videos, red team: a transcoding outlived by its lesson', () => {
  it('a lesson deleted while its video transcodes leaves no poster frame behind in storage', { timeout: 90_000 }, async () => {
    const gate = posterGatedFfmpeg();
    const t = await buildTestApp({ env: { FFMPEG_PATH: gate.path, DATABASE_URL: await separateDatabaseUrl() } });
    try {
      const h = harness(() => t);
      const admin = await registerAdmin(t);
      const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
      const { id: lessonId } = await h.addLesson(admin, course.id);
      const uploaded = await h.upload(admin, lessonId, readFileSync(makeClip('outlived.mp4', 640, 360, 2)));
      expect(uploaded.statusCode).toBe(202);
      // the renditions are made; the poster frame is about to be taken
      await eventually(
        () => existsSync(gate.started),
        (started) => started,
        60_000,
      );
      const storage = t.container.storage as LocalStorage;
      const videos = storage.pathOf(`videos/courses/${course.id}/${lessonId}`);
      expect((await injectAs(t.app, admin, { method: 'DELETE', url: `/lessons/${lessonId}` })).statusCode).toBe(204);
      await eventually(
        () => existsSync(videos),
        (present) => !present,
      );
      await gate.open();
      await eventually(
        async () =>
          (await injectAs(t.app, admin, { method: 'GET', url: `/admin/jobs/${uploaded.json<{ jobId: string }>().jobId}` })).json<{ state: string }>().state,
        (state) => state === 'completed' || state === 'dead',
      );
      const posters = storage.pathOf(`thumbnails/lessons/${lessonId}`);
      expect(existsSync(posters) ? readdirSync(posters) : []).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
