import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { injectAs, type Pair } from './auth.js';
import { eventually } from './jobs.js';
import { multipartFile } from './multipart.js';

export const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;
// A machine without ffmpeg skips the transcoding tests (the upload still stores, as transcoding_unavailable);
// CI installs it and sets REQUIRE_TEST_TOOLS, so there a missing ffmpeg fails instead of hiding the tests.
if (!hasFfmpeg && process.env.REQUIRE_TEST_TOOLS === '1') throw new Error('REQUIRE_TEST_TOOLS=1 but ffmpeg/ffprobe are not installed (apt-get install ffmpeg)');
if (!hasFfmpeg) console.warn('skipping the transcoding tests: ffmpeg is not installed (apt-get install ffmpeg)');

export const work = mkdtempSync(path.join(os.tmpdir(), 'parley-video-test-'));

/** A test clip from ffmpeg's own sources: colour bars with a counter, and a tone. */
export function makeClip(name: string, width: number, height: number, seconds: number): string {
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
export function brokenFfmpeg(): string {
  const file = path.join(work, 'broken-ffmpeg');
  writeFileSync(file, '#!/bin/sh\nif [ "$1" = "-version" ]; then exec ffmpeg -version; fi\necho "simulated encoder crash" >&2\nexit 1\n');
  chmodSync(file, 0o755);
  return file;
}

/**
 * An ffmpeg whose transcoding run (the one with -progress) first waits for a line on a FIFO:
 * the test decides when it goes on, with no timing guess.
 */
export function gatedFfmpeg(): { path: string; open(): Promise<void> } {
  const fifo = path.join(work, `gate-${randomUUID().slice(0, 8)}`);
  execFileSync('mkfifo', [fifo]);
  const file = path.join(work, `gated-ffmpeg-${path.basename(fifo)}`);
  writeFileSync(file, `#!/bin/sh\ncase " $* " in *" -progress "*) read go < "${fifo}";; esac\nexec ffmpeg "$@"\n`);
  chmodSync(file, 0o755);
  // opening a FIFO for writing waits for its reader: the gate opens for the run that waits
  return { path: file, open: () => writeFile(fifo, 'go\n') };
}

export function ffprobe(file: string): { width: number; height: number; codecs: string[] } {
  const output = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', file]).toString()) as {
    streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number }>;
  };
  const video = output.streams.find((stream) => stream.codec_type === 'video')!;
  return { width: video.width!, height: video.height!, codecs: output.streams.map((stream) => stream.codec_name).sort() };
}

export interface LessonBody {
  id: string;
  videoStatus: string;
  videoProgress: number;
  videoJobId?: string | null;
  videoError?: string | null;
  durationSeconds: number;
  thumbnailUrl: string | null;
}

/** What a test of a file needs: its app, an admin, and the calls it makes. */
export function harness(get: () => TestApp) {
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
  const lesson = async (admin: Pair, courseId: string, lessonId: string) => {
    const res = await injectAs(app(), admin, { method: 'GET', url: `/courses/${courseId}/lessons` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ items: LessonBody[] }>().items.find((item) => item.id === lessonId)!;
  };
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
export function variantsOf(masterUrl: string, master: string): string[] {
  return master
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => new URL(line, masterUrl).toString());
}

export const segmentsOf = (playlist: string) => playlist.split('\n').filter((line) => line && !line.startsWith('#'));
