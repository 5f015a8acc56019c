import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { FfmpegTools, hlsArguments, renditionsFor } from '../src/infra/video.js';
import { load, startServer, type LoadResult, type Server } from './lib.js';

/**
 * npm run bench:video (and the last part of npm run bench)
 * Issue 17's targets, on a 60-second 1920x1080 30 fps clip (ffmpeg's testsrc2 and a tone,
 * made in a temporary folder):
 * - transcoding: the bare ffmpeg command the job runs (FfmpegTools.transcodeToHls's arguments,
 *   hlsArguments() with renditionsFor() of FfmpegTools.probe()), timed, against Parley (compiled,
 *   workers on) from the upload's 202 until the lesson says videoStatus 'ready'; bare and Parley
 *   alternate for BENCH_VIDEO_ROUNDS (2) rounds, a fresh lesson each. Target: overhead < 10 %.
 * - GET /lessons/:id/video-url (an enrolled student), the master playlist and a variant playlist
 *   (its segments rewritten into signed URLs): requests/s and latency with autocannon,
 *   BENCH_CONNECTIONS (32) for BENCH_DURATION (10 s) each.
 * One instance: BENCH_DATABASE_URL / BENCH_REDIS_URL when set, else the embedded defaults.
 * Without ffmpeg and ffprobe it says so and does nothing. Writes bench/results/video.json.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.env.BENCH_VIDEO_ROUNDS ?? 2);
const durationSeconds = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ffmpegPath = process.env.FFMPEG_PATH ?? 'ffmpeg';
const ffprobePath = process.env.FFPROBE_PATH ?? 'ffprobe';
const CLIP = { seconds: 60, width: 1920, height: 1080, fps: 30 };
const POLL_MS = 200;
const READY_TIMEOUT_MS = 20 * 60_000;
const PASSWORD = 'benchmark passphrase';
const DEVICE = { deviceId: 'bench', platform: 'web' };

if ([ffmpegPath, ffprobePath].some((tool) => spawnSync(tool, ['-version']).status !== 0)) {
  console.error('bench:video skipped: ffmpeg and ffprobe are not installed (apt-get install ffmpeg)');
  process.exit(0);
}

const loadAverage = () => os.loadavg().map((value) => Math.round(value * 100) / 100);
const loadAverageAtStart = loadAverage();
execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });

const work = mkdtempSync(path.join(os.tmpdir(), 'parley-bench-video-'));
// run as root, the embedded PostgreSQL (as user postgres) must be able to enter its data folder
chmodSync(work, 0o755);
let server: Server | undefined;
/** The server's SIGTERM and exit, then the folder goes (clip, outputs, the embedded data). */
async function cleanUp(): Promise<void> {
  if (server && server.child.exitCode === null && server.child.signalCode === null) await server.stop();
  rmSync(work, { recursive: true, force: true });
}
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));
process.once('SIGTERM', () => void cleanUp().then(() => process.exit(143)));

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const seconds = (values: number[]) => ({ runs: values.map((value) => round(value, 2)), best: round(Math.min(...values), 2), median: round(median(values), 2) });
const percent = (parley: number, bare: number) => round(((parley - bare) / bare) * 100);

// --- the clip, and the command the job runs, bare

const segmentsOf = (playlist: string) => playlist.split('\n').filter((line) => line && !line.startsWith('#'));

const clip = path.join(work, 'clip.mp4');
const clipStarted = performance.now();
execFileSync(ffmpegPath, [
  ...['-hide_banner', '-loglevel', 'error', '-y'],
  ...['-f', 'lavfi', '-i', `testsrc2=size=${CLIP.width}x${CLIP.height}:rate=${CLIP.fps}:duration=${CLIP.seconds}`],
  ...['-f', 'lavfi', '-i', `sine=frequency=440:duration=${CLIP.seconds}`],
  ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip],
]);
const clipSeconds = (performance.now() - clipStarted) / 1000;
const clipBytes = statSync(clip).size;
const probe = await new FfmpegTools(ffmpegPath, ffprobePath).probe(clip, AbortSignal.timeout(30_000));
const renditions = renditionsFor(probe);
console.log(
  `clip: ${CLIP.seconds} s ${probe.width}x${probe.height}, ${round(clipBytes / 1024 ** 2)} MB, made in ${round(clipSeconds)} s; renditions ${renditions.map((r) => r.name).join(', ')}`,
);

/** As FfmpegTools.transcodeToHls runs it (its folders made first, its progress read and dropped); the wall time of ffmpeg alone. */
async function bareTranscode(index: number): Promise<{ seconds: number; segments: number }> {
  const outputDir = path.join(work, `bare-${index}`);
  await Promise.all(renditions.map((rendition) => mkdir(path.join(outputDir, rendition.name), { recursive: true })));
  const args = ['-nostats', '-loglevel', 'error', '-progress', 'pipe:1', ...hlsArguments(clip, outputDir, renditions, probe)];
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited with ${code}: ${stderr}`))));
  });
  const elapsed = (performance.now() - started) / 1000;
  const segments = segmentsOf(readFileSync(path.join(outputDir, renditions[0]!.name, 'index.m3u8'), 'utf8')).length;
  await rm(outputDir, { recursive: true, force: true });
  return { seconds: elapsed, segments };
}

// --- Parley

const port = await findFreePort();
const base = `http://127.0.0.1:${port}`;
const serverEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  PORT: String(port),
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  BCRYPT_COST: '4',
  AUTH_LOGIN_LIMIT: '1000000/1m',
  AUTH_REGISTER_LIMIT: '1000000/1m',
  RATE_LIMIT_REQUESTS: '100000000',
  FFMPEG_PATH: ffmpegPath,
  FFPROBE_PATH: ffprobePath,
  DATABASE_URL: process.env.BENCH_DATABASE_URL,
  REDIS_URL: process.env.BENCH_REDIS_URL,
};

interface Answer {
  status: number;
  body: string;
}
async function api<T>(method: string, pathname: string, token?: string, payload?: unknown): Promise<T> {
  const response = await fetch(`${base}${pathname}`, {
    method,
    headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const body = await response.text();
  if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${body}`);
  return JSON.parse(body) as T;
}

/** The clip as one multipart file part, streamed from disk as a client would send it. */
function uploadClip(lessonId: string, token: string): Promise<Answer> {
  const boundary = `----parley-bench-${randomUUID()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/lessons/${lessonId}/video`,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': head.length + clipBytes + tail.length,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.write(head);
    const file = createReadStream(clip);
    file.on('error', reject);
    file.on('end', () => request.end(tail));
    file.pipe(request, { end: false });
  });
}

interface LessonBody {
  id: string;
  videoStatus: string;
  videoError?: string | null;
}
interface JobBody {
  state: string;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const serverCpuSeconds = async () => {
  const metrics = await (await fetch(`${base}/metrics`)).text();
  return Number(/^process_cpu_seconds_total (\S+)/m.exec(metrics)?.[1] ?? Number.NaN);
};

/** Upload, then the lesson's list polled (as an admin's page would) until the video is ready. */
async function parleyTranscode(admin: string, courseId: string, index: number) {
  const lesson = await api<{ id: string }>('POST', `/courses/${courseId}/lessons`, admin, { title: `Bench lesson ${index}` });
  const cpuBefore = await serverCpuSeconds();
  const uploadStarted = performance.now();
  const uploaded = await uploadClip(lesson.id, admin);
  const accepted = performance.now();
  if (uploaded.status !== 202) throw new Error(`upload: ${uploaded.status} ${uploaded.body}`);
  const { jobId } = JSON.parse(uploaded.body) as { jobId: string | null };
  if (!jobId) throw new Error(`upload started no transcoding: ${uploaded.body}`);
  for (;;) {
    const { items } = await api<{ items: LessonBody[] }>('GET', `/courses/${courseId}/lessons`, admin);
    const current = items.find((item) => item.id === lesson.id);
    if (current?.videoStatus === 'ready') break;
    if (current?.videoStatus === 'failed' || current?.videoStatus === 'transcoding_unavailable')
      throw new Error(`the video ended ${current.videoStatus}: ${current.videoError ?? ''}`);
    if (performance.now() - accepted > READY_TIMEOUT_MS) throw new Error(`lesson ${lesson.id} not ready after ${READY_TIMEOUT_MS / 1000} s`);
    await sleep(POLL_MS);
  }
  const ready = performance.now();
  const cpuAfter = await serverCpuSeconds();
  // the lesson turns ready just before the job records its end
  let job = await api<JobBody>('GET', `/admin/jobs/${encodeURIComponent(jobId)}`, admin);
  while (job.state !== 'completed') {
    if (performance.now() - ready > 30_000) throw new Error(`job ${jobId} still ${job.state} after its lesson turned ready`);
    await sleep(POLL_MS);
    job = await api<JobBody>('GET', `/admin/jobs/${encodeURIComponent(jobId)}`, admin);
  }
  const at = (value: string | null) => new Date(value!).getTime();
  return {
    lessonId: lesson.id,
    uploadSeconds: (accepted - uploadStarted) / 1000,
    acceptedToReadySeconds: (ready - accepted) / 1000,
    job: {
      attempts: job.attempts,
      waitForAWorkerSeconds: round((at(job.startedAt) - at(job.createdAt)) / 1000, 2),
      runSeconds: round((at(job.finishedAt) - at(job.startedAt)) / 1000, 2),
    },
    serverProcessCpuSeconds: round(cpuAfter - cpuBefore, 2),
  };
}

let report: Record<string, unknown>;
try {
  const adminEmail = `bench-admin-${Date.now()}@parley.test`;
  // before the server, in its folder: with the embedded defaults only one process may hold the database
  execFileSync(process.execPath, [path.join(root, 'dist/scripts/create-admin.js'), '--email', adminEmail, '--password', PASSWORD], {
    cwd: work,
    env: serverEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  server = await startServer(process.execPath, [path.join(root, 'dist/src/main.js')], { cwd: work, env: serverEnv, readyUrl: `${base}/ready` });
  const { accessToken: admin } = await api<{ accessToken: string }>('POST', '/auth/login', undefined, { email: adminEmail, password: PASSWORD, ...DEVICE });
  const course = await api<{ id: string }>('POST', '/courses', admin, {
    title: 'Bench video course',
    level: 'beginner',
    price: { amount: 0, currency: 'usd' },
    published: true,
  });

  // 1. transcoding: bare and Parley alternate, so a busy moment on the machine hits both alike
  const bare: Array<Awaited<ReturnType<typeof bareTranscode>>> = [];
  const parley: Array<Awaited<ReturnType<typeof parleyTranscode>>> = [];
  for (let index = 0; index < rounds; index += 1) {
    bare.push(await bareTranscode(index));
    console.log(`round ${index + 1}/${rounds} bare ffmpeg: ${round(bare.at(-1)!.seconds, 2)} s`);
    parley.push(await parleyTranscode(admin, course.id, index));
    const run = parley.at(-1)!;
    console.log(
      `round ${index + 1}/${rounds} Parley: upload ${round(run.uploadSeconds, 2)} s, 202 -> ready ${round(run.acceptedToReadySeconds, 2)} s (job: waited ${run.job.waitForAWorkerSeconds} s, ran ${run.job.runSeconds} s)`,
    );
  }
  const bareSeconds = seconds(bare.map((run) => run.seconds));
  const parleySeconds = seconds(parley.map((run) => run.acceptedToReadySeconds));
  const overhead = { best: percent(parleySeconds.best, bareSeconds.best), median: percent(parleySeconds.median, bareSeconds.median) };
  console.log(
    `transcoding: bare best ${bareSeconds.best} s / median ${bareSeconds.median} s; Parley best ${parleySeconds.best} s / median ${parleySeconds.median} s; overhead ${overhead.best} % (best) / ${overhead.median} % (median), target < 10 %`,
  );

  // 2. playback requests: the last lesson, its student's URL, its playlists
  const lessonId = parley.at(-1)!.lessonId;
  const student = await api<{ accessToken: string }>('POST', '/auth/register', undefined, {
    email: `bench-student-${Date.now()}@parley.test`,
    password: PASSWORD,
    ...DEVICE,
  });
  await api('POST', `/courses/${course.id}/enroll`, student.accessToken);
  const { url: masterUrl } = await api<{ url: string }>('GET', `/lessons/${lessonId}/video-url`, student.accessToken);
  const master = await (await fetch(masterUrl)).text();
  const variantUrl = new URL(segmentsOf(master)[0]!, masterUrl).toString();
  const variantSegments = segmentsOf(await (await fetch(variantUrl)).text()).length;
  const rendition = path.basename(path.dirname(new URL(variantUrl).pathname));

  const scenarios: Record<string, LoadResult> = {};
  const measure = async (name: string, options: Parameters<typeof load>[0]) => {
    const result = await load({ connections, durationSeconds, ...options });
    scenarios[name] = result;
    console.log(`${name}: ${result.requestsPerSecond} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, non2xx ${result.non2xx}, errors ${result.errors}`);
  };
  await measure('GET /lessons/:id/video-url (enrolled student)', {
    url: `${base}/lessons/${lessonId}/video-url`,
    headers: { authorization: `Bearer ${student.accessToken}` },
  });
  await measure('GET master.m3u8', { url: masterUrl });
  await measure(`GET ${rendition}/index.m3u8 (${variantSegments} segments signed)`, { url: variantUrl });

  report = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverageAtStart, loadAverageAtEnd: loadAverage() },
    settings: {
      database: process.env.BENCH_DATABASE_URL ? 'configured' : 'embedded',
      redis: process.env.BENCH_REDIS_URL ? 'configured' : 'embedded',
      storage: 'embedded (DATA_DIR/storage, signed /storage URLs)',
      server: 'node dist/src/main.js, LOG_LEVEL=warn, workers on, JOBS_BACKEND=postgres',
      ffmpeg: execFileSync(ffmpegPath, ['-version']).toString().split('\n')[0],
      rounds,
      connections,
      durationSeconds,
    },
    'transcoding a 60 s 1080p clip': {
      clip: {
        source: `testsrc2 ${CLIP.width}x${CLIP.height} ${CLIP.fps} fps + 440 Hz sine, libx264 ultrafast + AAC`,
        seconds: probe.durationSeconds,
        megabytes: round(clipBytes / 1024 ** 2),
      },
      renditions: renditions.map((rendition) => rendition.name),
      segmentsPerRendition: bare[0]!.segments,
      bareFfmpegSeconds: bareSeconds,
      parleyAcceptedToReadySeconds: parleySeconds,
      overheadPercent: overhead,
      parleyRuns: parley.map((run) => ({
        uploadSeconds: round(run.uploadSeconds, 2),
        acceptedToReadySeconds: round(run.acceptedToReadySeconds, 2),
        job: run.job,
        serverProcessCpuSeconds: run.serverProcessCpuSeconds,
      })),
      target: 'overhead < 10 %',
      met: overhead.best < 10,
    },
    'playback requests': scenarios,
    notes: [
      'bare: ffmpeg with the arguments FfmpegTools.transcodeToHls passes (-nostats -loglevel error -progress pipe:1 + hlsArguments), wall time of that process alone.',
      'Parley: from the 202 of the upload until GET /courses/:id/lessons (polled every 200 ms, as the admin) shows videoStatus ready; it includes the job queue, copying the source out of storage, ffprobe, ffmpeg, the poster frame and storing every segment. The upload itself is uploadSeconds, apart.',
      'overhead: (Parley - bare) / bare, best against best (met) and median against median; rounds alternate bare and Parley.',
      'serverProcessCpuSeconds: the Node process only (process_cpu_seconds_total), not its ffmpeg children.',
      'Two cores shared by this process, the server, ffmpeg, PostgreSQL and whatever else ran (see the load averages): a single run is noisy.',
    ],
  };
} finally {
  await cleanUp();
}

mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/video.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log('Wrote bench/results/video.json');
