import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTestApp, separateDatabaseUrl, testEnv } from './helpers/app.js';
import { injectAs } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { createCourse, registerAdmin } from './helpers/payments.js';
import { startS3 } from './helpers/s3.js';
import { repoRoot } from './helpers/spawn.js';
import { gatedFfmpeg, harness, hasFfmpeg, makeClip, segmentsOf, variantsOf } from './helpers/video.js';

interface WorkerProcess {
  /** Kills the worker and everything it started (its ffmpeg), as a crash would. */
  crash(): Promise<void>;
  stop(): Promise<number | null>;
}

const workers: WorkerProcess[] = [];
afterAll(async () => {
  for (const worker of workers) await worker.crash();
});

/** `npm run worker`, built, in its own process group so a crash takes its ffmpeg with it. */
async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const all = await testEnv({ JOBS_STALLED_TIMEOUT: '1500ms', ...env });
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist/src/worker.js')], {
    cwd: mkdtempSync(path.join(os.tmpdir(), 'parley-worker-')),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined)) },
    stdio: 'ignore',
    detached: true,
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const worker: WorkerProcess = {
    crash: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-child.pid!, 'SIGKILL');
      await exit;
    },
    stop: async () => {
      child.kill('SIGTERM');
      return exit;
    },
  };
  workers.push(worker);
  return worker;
}

describe.skipIf(!hasFfmpeg)('transcoding in a worker process', () => {
  it('a transcoding cut by kill -9 of its worker finishes once, in the next worker', { timeout: 120_000 }, async () => {
    const gate = gatedFfmpeg();
    const shared = { DATABASE_URL: await separateDatabaseUrl(), DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'parley-data-')) };
    // the API alone: the jobs run in the worker processes
    const t = await buildTestApp({ env: { ...shared, WORKERS: 'off' } });
    const h = harness(() => t);
    try {
      const admin = await registerAdmin(t);
      const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
      const { id: lessonId } = await h.addLesson(admin, course.id);
      const uploaded = await h.upload(admin, lessonId, readFileSync(makeClip('survivor.mp4', 854, 480, 2)));
      expect(uploaded.statusCode).toBe(202);
      const { jobId } = uploaded.json<{ jobId: string }>();

      const first = await startWorkerProcess({ ...shared, FFMPEG_PATH: gate.path });
      await h.videoStatus(admin, course.id, lessonId, 'transcoding');
      // the run's folder (named after the upload, which the job id carries): a kill -9 leaves it behind
      const workDir = path.join(os.tmpdir(), `parley-video-${jobId.split(':')[1]}`);
      await eventually(
        () => existsSync(path.join(workDir, 'source.mp4')),
        (present) => present,
      );
      const job = async () => (await injectAs(t.app, admin, { method: 'GET', url: `/admin/jobs/${jobId}` })).json<{ state: string; attempts: number }>();
      expect((await job()).state).toBe('active');
      await first.crash();

      const second = await startWorkerProcess({ ...shared, FFMPEG_PATH: gate.path });
      await gate.open(); // only the second worker's ffmpeg can be waiting on it now
      const ready = await h.videoStatus(admin, course.id, lessonId, 'ready');
      expect(ready).toMatchObject({ videoProgress: 100, durationSeconds: 2, videoError: null });
      const finished = await eventually(job, (current) => current.state === 'completed', 30_000);
      expect(finished.attempts).toBe(2);
      expect(existsSync(workDir)).toBe(false); // the next run cleared what the killed one left
      const notices = await eventually(
        async () => (await injectAs(t.app, admin, { method: 'GET', url: '/notifications' })).json<{ items: Array<{ type: string }> }>().items,
        (items) => items.some((item) => item.type === 'course_ready'),
      );
      expect(notices.filter((item) => item.type === 'course_ready')).toHaveLength(1);
      const { url } = (await h.videoUrl(admin, lessonId)).json<{ url: string }>();
      expect((await h.fetchOwn(url)).body).toContain('RESOLUTION=854x480');
      expect(await second.stop()).toBe(0);
    } finally {
      await t.close();
    }
  });
});

describe.skipIf(!hasFfmpeg)('lesson videos on S3 (a local S3-compatible server, the real AWS SDK)', () => {
  it('stores the renditions in the bucket and plays them through presigned segment URLs', { timeout: 120_000 }, async () => {
    const s3 = await startS3();
    const t = await buildTestApp({ env: { APP_URL: 'http://parley.test', DATABASE_URL: await separateDatabaseUrl(), ...s3.env } });
    const h = harness(() => t);
    try {
      const admin = await registerAdmin(t);
      const course = await createCourse(t.app, admin, { price: { amount: 0, currency: 'usd' } });
      const { id: lessonId } = await h.addLesson(admin, course.id);
      expect((await h.upload(admin, lessonId, readFileSync(makeClip('s3.mp4', 640, 360, 2)))).statusCode).toBe(202);
      const ready = await h.videoStatus(admin, course.id, lessonId, 'ready');
      const poster = await fetch(ready.thumbnailUrl!);
      expect([poster.status, poster.headers.get('content-type')]).toEqual([200, 'image/webp']);

      const { url } = (await h.videoUrl(admin, lessonId)).json<{ url: string }>();
      const master = await h.fetchOwn(url);
      expect(master.statusCode).toBe(200);
      const [variantUrl] = variantsOf(url, master.body);
      const variant = await h.fetchOwn(variantUrl!);
      const segments = segmentsOf(variant.body);
      expect(segments.length).toBeGreaterThan(0);
      for (const segment of segments) {
        expect(segment).toMatch(
          new RegExp(
            `^http://127\\.0\\.0\\.1:${s3.port}/parley-media/videos/courses/${course.id}/${lessonId}/hls/360p/segment_\\d{3}\\.ts\\?.*X-Amz-Signature=`,
          ),
        );
        const fetched = await fetch(segment);
        expect(fetched.status).toBe(200);
        expect((await fetched.arrayBuffer()).byteLength).toBeGreaterThan(0);
      }
      // signed until the playback URL expires (s3rver serves unsigned reads too, so the bucket's own refusal is S3's to test)
      const expiresIn = Number(new URL(segments[0]!).searchParams.get('X-Amz-Expires'));
      expect(expiresIn).toBeGreaterThan(3 * 3600 - 60);
      expect(expiresIn).toBeLessThanOrEqual(3 * 3600);
    } finally {
      await t.close();
      await s3.close();
    }
  });
});
