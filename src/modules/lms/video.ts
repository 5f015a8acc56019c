import { createHmac } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { EventBus } from '../../infra/events.js';
import type { IdGenerator } from '../../infra/ids.js';
import { toWebp16x9 } from '../../infra/images.js';
import { JobTimeoutError, PermanentJobError, type JobContext, type JobQueue } from '../../infra/jobs.js';
import type { Logger } from '../../infra/logger.js';
import { contentTypeOf, type ObjectStorage } from '../../infra/storage.js';
import { renditionsFor, sniffVideoContainer, UnreadableVideoError, VIDEO_SNIFF_BYTES, VideoToolError, type VideoTools } from '../../infra/video.js';
import { peekBytes } from '../../http/multipart.js';
import { inParallel } from '../../shared/concurrency.js';
import { safeEqual } from '../../shared/crypto.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import type { VideoStatus } from './entities.js';
import './events.js';
import { TRANSCODE_JOB } from './jobs.js';
import type { LessonGrant, LmsService, Viewer } from './service.js';
import { VideoRepository, type UploadRef } from './video-repository.js';

/** Runs of one transcoding, the first included: a failure after the last marks the video failed. */
export const TRANSCODE_ATTEMPTS = 3;

export interface VideoSettings {
  maxBytes: number;
  /** How long a playback URL works. */
  urlTtlSeconds: number;
  appUrl: string;
  /** Signs playback URLs. */
  secret: string;
}

export interface TranscodePayload {
  lessonId: string;
  uploadId: string;
}

export interface VideoUploadView {
  lessonId: string;
  videoStatus: VideoStatus;
  /** The transcoding job (`GET /admin/jobs/:id`); null when none runs (ffmpeg missing). */
  jobId: string | null;
  sizeBytes: number;
}

export interface VideoUrlView {
  /** The master playlist (HLS); its variant playlists and segments load from it, for this holder, until `expiresAt`. */
  url: string;
  expiresAt: Date;
}

/** A playback URL's path: the lesson, then a token binding the upload, the viewer's grant and the expiry. */
// a source below the ladder keeps its own size: 90p is a rendition too
const RENDITION_NAME = /^[0-9]{1,4}p$/;
const SEGMENT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;
const GRANT_CODES: Record<LessonGrant, string> = { admin: 'a', enrolled: 'e', preview: 'p' };
const TOKEN = /^(\d{1,12})\.([aep])(?:-([0-9a-f-]{36}))?\.([A-Za-z0-9_-]{43})$/;
const PLAYLIST_CACHE_ENTRIES = 512;
/** ffmpeg reports progress about twice a second; the lesson row is written at most this often. */
const PROGRESS_WRITE_INTERVAL_MS = 1_000;
const POSTER = { width: 1280, maxPixels: 40_000_000 };

/** The job of an upload that was replaced stops quietly. */
class SupersededError extends Error {
  override name = 'SupersededError';
}

const hlsPrefix = (courseId: string, lessonId: string) => `videos/courses/${courseId}/${lessonId}/hls/`;

/**
 * Lesson videos: the upload streamed to storage, the HLS transcoding job, and playback through
 * signed playlist URLs.
 *
 * Playback scheme: `GET /lessons/:id/video-url` hands out
 * `/media/lessons/{lessonId}/{token}/master.m3u8`, the token signing (HMAC) the upload, the
 * viewer's grant and the expiry. The app serves the master playlist as stored (its variant
 * URIs are relative, so they stay under the signed prefix) and each variant playlist with
 * every segment rewritten to a storage URL signed until the same expiry (S3 presigned, or the
 * embedded storage's signed /storage URL). Each playlist load checks the grant again, so a
 * refund ends playback at the next load; segments stay private to the holder of a URL.
 */
export class VideoService {
  private readonly repository: VideoRepository;
  private readonly playlists = new Map<string, string>();

  constructor(
    private readonly dependencies: {
      db: DataSource;
      storage: ObjectStorage;
      jobs: JobQueue;
      tools: VideoTools;
      lms: LmsService;
      clock: Clock;
      ids: IdGenerator;
      events: EventBus;
      logger: Logger;
    },
    private readonly settings: VideoSettings,
  ) {
    this.repository = new VideoRepository(dependencies.db);
  }

  // --- upload

  /**
   * Stores an uploaded video as the lesson's source (its type checked by its first bytes), then
   * queues its transcoding; a new upload replaces the previous one and stops its job.
   */
  async upload(adminId: string, lessonId: string, file: Readable): Promise<VideoUploadView> {
    const { storage, jobs, clock, ids, logger, tools } = this.dependencies;
    const lesson = await this.dependencies.lms.findLesson(lessonId);
    if (!lesson) throw new NotFoundError('Lesson');
    const { head, stream } = await peekBytes(file, VIDEO_SNIFF_BYTES);
    const container = sniffVideoContainer(head);
    if (!container) throw new AppError('invalid_video', 'The file is not a video (MP4, MOV, WebM, MKV, AVI, MPEG-TS, MPEG-PS or FLV)');
    const sourceKey = `videos/courses/${lesson.courseId}/${lessonId}/original.${container}`;
    let sizeBytes: number;
    try {
      sizeBytes = await storage.putStream(sourceKey, stream, contentTypeOf(sourceKey));
    } catch (error) {
      if (error instanceof AppError) throw error;
      // the lesson's files went with it while its video streamed in
      if (!(await this.dependencies.lms.findLesson(lessonId))) throw new NotFoundError('Lesson');
      logger.error({ err: error, lessonId }, 'could not store an uploaded video');
      throw new AppError('dependency_unavailable', 'The video could not be stored; try again');
    }
    const ref = { lessonId, uploadId: ids.uuid() };
    const transcodable = await tools.available();
    const started = await this.repository.startUpload(ref, {
      sourceKey,
      uploadedBy: adminId,
      status: transcodable ? 'uploaded' : 'transcoding_unavailable',
      now: clock.now(),
    });
    if (!started) {
      // the lesson was deleted while its video uploaded
      await this.deleteQuietly(sourceKey);
      throw new NotFoundError('Lesson');
    }
    if (started.previousSourceKey && started.previousSourceKey !== sourceKey) await this.deleteQuietly(started.previousSourceKey);
    if (!transcodable) {
      logger.warn({ lessonId }, 'ffmpeg is not installed: the video is stored but cannot be transcoded');
      return { lessonId, videoStatus: 'transcoding_unavailable', jobId: null, sizeBytes };
    }
    let jobId: string;
    try {
      jobId = await jobs.enqueue(TRANSCODE_JOB, ref satisfies TranscodePayload, { jobId: ref.uploadId });
    } catch (error) {
      logger.error({ err: error, lessonId }, 'could not queue the transcoding of a video');
      await this.repository.markUnplayable(ref, 'failed', 'The transcoding could not be queued: upload the video again', clock.now());
      throw new AppError('dependency_unavailable', 'The video was stored but its transcoding could not be queued; upload it again');
    }
    await this.repository.recordJob(ref, jobId);
    return { lessonId, videoStatus: 'uploaded', jobId, sizeBytes };
  }

  private async deleteQuietly(key: string): Promise<void> {
    await this.dependencies.storage.delete(key).catch((error: unknown) => this.dependencies.logger.warn({ err: error, key }, 'could not delete a stored file'));
  }

  // --- the transcoding job

  /**
   * Transcodes the upload into HLS renditions, uploads them with a poster frame, and marks the
   * lesson ready. Safe to run again after a crash: it starts over in a fresh folder and
   * overwrites what an earlier run uploaded; a replaced upload's job stops at its next step.
   */
  async transcode(payload: TranscodePayload, context: JobContext): Promise<void> {
    const { storage, clock, tools } = this.dependencies;
    const ref: UploadRef = { lessonId: payload.lessonId, uploadId: payload.uploadId };
    const lesson = await this.dependencies.lms.findLesson(ref.lessonId);
    if (!lesson || lesson.videoUploadId !== ref.uploadId || !lesson.videoSourceKey) {
      context.logger.info({ lessonId: ref.lessonId }, 'the video was replaced or deleted: nothing to transcode');
      return;
    }
    if (!(await tools.available())) {
      await this.repository.markUnplayable(ref, 'transcoding_unavailable', 'ffmpeg is not installed where the jobs run', clock.now());
      return;
    }
    if (!(await this.repository.markTranscoding(ref, context.jobId, clock.now()))) return;

    const stop = new AbortController();
    const forwardAbort = () => stop.abort(context.signal.reason);
    context.signal.addEventListener('abort', forwardAbort, { once: true });
    // one folder per upload: a run cut by a crash (kill -9 leaves no finally) is cleared by the next run
    const workDir = path.join(tmpdir(), `parley-video-${ref.uploadId}`);
    await rm(workDir, { recursive: true, force: true });
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    // a poster this run stored that is not (yet) the lesson's: deleted when the run ends otherwise
    let strayPoster: string | null = null;
    try {
      const source = path.join(workDir, `source${path.extname(lesson.videoSourceKey)}`);
      await storage.download(lesson.videoSourceKey, source);
      const probe = await tools.probe(source, stop.signal);
      const renditions = renditionsFor(probe);
      const outputDir = path.join(workDir, 'hls');
      const progress = this.progressReporter(ref, context, stop);
      await tools.transcodeToHls(source, outputDir, renditions, probe, { signal: stop.signal, onProgress: progress.report });
      await progress.settled();
      const thumbnailKey = await this.storePoster(source, probe.durationSeconds, ref.lessonId, stop.signal, context);
      strayPoster = thumbnailKey;
      if ((await this.dependencies.lms.findLesson(ref.lessonId))?.videoUploadId !== ref.uploadId) throw new SupersededError();
      const prefix = hlsPrefix(lesson.courseId, ref.lessonId);
      await storage.deletePrefix(prefix);
      const files = (await readdir(outputDir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
      await inParallel(files, 4, async (entry) => {
        const relative = path.relative(outputDir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
        await storage.putFile(`${prefix}${relative}`, path.join(entry.parentPath, entry.name), contentTypeOf(entry.name));
      });
      const ready = await this.repository.markReady(ref, {
        durationSeconds: Math.round(probe.durationSeconds),
        heights: renditions.map((rendition) => rendition.lines),
        thumbnailKey,
        now: clock.now(),
      });
      if (!ready) return;
      strayPoster = null;
      await context.progress(100);
      if (ready.previousThumbnailKey && ready.previousThumbnailKey !== thumbnailKey) await this.deleteQuietly(ready.previousThumbnailKey);
      if (ready.uploadedBy) {
        await this.dependencies.events
          .publish('lesson.video_ready', { ...ref, courseId: ready.courseId, lessonTitle: ready.title, adminId: ready.uploadedBy })
          .catch((error: unknown) => context.logger.error({ err: error }, 'could not tell that a video is ready'));
      }
    } catch (error) {
      // the reason is shown to admins: the work folder's paths say nothing to them, and too much about the server
      if (error instanceof VideoToolError) error.message = error.message.replaceAll(`${workDir}${path.sep}`, '');
      await this.settleFailure(ref, error, stop.signal, context);
    } finally {
      context.signal.removeEventListener('abort', forwardAbort);
      if (strayPoster) await this.deleteQuietly(strayPoster);
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * Progress from ffmpeg to the job and the lesson, at most once a second; the lesson's answer
   * also says whether the upload is still current (a re-upload stops this run).
   */
  private progressReporter(ref: UploadRef, context: JobContext, stop: AbortController) {
    let reported = 0;
    let lastWrite = 0;
    let writing: Promise<void> = Promise.resolve();
    return {
      report: (fraction: number) => {
        const percent = Math.min(99, Math.floor(fraction * 100));
        const now = Date.now();
        if (percent <= reported || now - lastWrite < PROGRESS_WRITE_INTERVAL_MS) return;
        reported = percent;
        lastWrite = now;
        writing = writing
          .then(async () => {
            await context.progress(percent);
            if (!(await this.repository.reportProgress(ref, percent))) stop.abort(new SupersededError());
          })
          .catch((error: unknown) => context.logger.warn({ err: error }, 'could not record transcoding progress'));
      },
      settled: () => writing,
    };
  }

  /** A frame a second in (or mid-video for shorter ones) as the lesson's 16:9 poster; a poster that fails is only logged. */
  private async storePoster(source: string, durationSeconds: number, lessonId: string, signal: AbortSignal, context: JobContext): Promise<string | null> {
    try {
      const frame = await this.dependencies.tools.frameAt(source, Math.min(1, durationSeconds / 2), signal);
      const poster = await toWebp16x9(frame, POSTER.width, POSTER.maxPixels);
      const key = `thumbnails/lessons/${lessonId}/${this.dependencies.clock.now().getTime()}-${this.dependencies.ids.uuid().slice(0, 8)}.webp`;
      await this.dependencies.storage.put(key, poster, 'image/webp');
      return key;
    } catch (error) {
      if (signal.aborted) throw error;
      context.logger.warn({ err: error, lessonId }, 'could not make a poster frame; the video plays without one');
      return null;
    }
  }

  /**
   * A failed run: a replaced upload ends quietly; a shutdown hands the job back to the queue; an
   * unreadable file fails at once; anything else is retried, and marks the video failed after
   * the last attempt.
   */
  private async settleFailure(ref: UploadRef, error: unknown, signal: AbortSignal, context: JobContext): Promise<void> {
    if (signal.reason instanceof SupersededError || error instanceof SupersededError) {
      context.logger.info({ lessonId: ref.lessonId }, 'the video was replaced: its earlier transcoding stopped');
      return;
    }
    if (signal.aborted && !(signal.reason instanceof JobTimeoutError)) throw error;
    const reason = signal.reason instanceof JobTimeoutError ? `transcoding ${signal.reason.message}` : error instanceof Error ? error.message : String(error);
    const final = error instanceof UnreadableVideoError || context.attempt >= TRANSCODE_ATTEMPTS;
    if (!final) {
      await this.repository.recordRetryError(ref, reason);
      throw error;
    }
    if (await this.repository.markUnplayable(ref, 'failed', reason, this.dependencies.clock.now())) {
      const lesson = await this.dependencies.lms.findLesson(ref.lessonId);
      if (lesson?.videoUploadedBy) {
        await this.dependencies.events
          .publish('lesson.video_failed', { ...ref, courseId: lesson.courseId, lessonTitle: lesson.title, adminId: lesson.videoUploadedBy, reason })
          .catch((publishError: unknown) => context.logger.error({ err: publishError }, 'could not tell that a video failed'));
      }
    }
    throw error instanceof UnreadableVideoError ? new PermanentJobError(reason) : error;
  }

  // --- playback

  private sign(lessonId: string, uploadId: string, grant: string, expires: number): string {
    return createHmac('sha256', this.settings.secret).update(`lesson-video\n${lessonId}\n${uploadId}\n${grant}\n${expires}`).digest('base64url');
  }

  /** A playback URL for whoever may watch the lesson (401 anonymous, 403 not_enrolled, 409 video_not_ready). */
  async videoUrl(lessonId: string, viewer: Viewer): Promise<VideoUrlView> {
    const { lesson, grant } = await this.dependencies.lms.lessonGrant(lessonId, viewer);
    if (lesson.videoStatus !== 'ready' || !lesson.videoUploadId)
      throw new AppError('video_not_ready', 'This lesson has no playable video yet', { videoStatus: lesson.videoStatus, videoProgress: lesson.videoProgress });
    const expires = Math.floor(this.dependencies.clock.now().getTime() / 1000) + this.settings.urlTtlSeconds;
    const holder = grant === 'preview' ? GRANT_CODES.preview : `${GRANT_CODES[grant]}-${viewer.userId}`;
    const token = `${expires}.${holder}.${this.sign(lessonId, lesson.videoUploadId, holder, expires)}`;
    return { url: new URL(`/media/lessons/${lessonId}/${token}/master.m3u8`, this.settings.appUrl).toString(), expiresAt: new Date(expires * 1000) };
  }

  /**
   * The lesson behind a playback token, while the token is genuine, unexpired, for the current
   * upload, and its grant still holds; otherwise 403 (the same for every reason).
   */
  private async authorize(lessonId: string, token: string) {
    const denied = new AppError('forbidden', 'This video link is invalid or has expired; ask for a new one');
    const match = TOKEN.exec(token);
    if (!match) throw denied;
    const [, expiresText, grantCode, userId, signature] = match as unknown as [string, string, string, string | undefined, string];
    const expires = Number(expiresText);
    if (expires < this.dependencies.clock.now().getTime() / 1000) throw denied;
    const lesson = await this.dependencies.lms.findLesson(lessonId);
    if (!lesson?.videoUploadId || lesson.videoStatus !== 'ready') throw denied;
    const holder = userId ? `${grantCode}-${userId}` : grantCode;
    if (!safeEqual(signature, this.sign(lessonId, lesson.videoUploadId, holder, expires))) throw denied;
    const grant = (Object.keys(GRANT_CODES) as LessonGrant[]).find((name) => GRANT_CODES[name] === grantCode)!;
    if (!(await this.dependencies.lms.grantHolds(lesson, grant, userId ?? null))) throw denied;
    return { lesson: lesson as typeof lesson & { videoUploadId: string }, expires };
  }

  private async playlist(lesson: { id: string; courseId: string; videoUploadId: string }, name: string): Promise<string> {
    const cacheKey = `${lesson.id}/${lesson.videoUploadId}/${name}`;
    const cached = this.playlists.get(cacheKey);
    if (cached !== undefined) return cached;
    const bytes = await this.dependencies.storage.get(`${hlsPrefix(lesson.courseId, lesson.id)}${name}`);
    if (!bytes) throw new NotFoundError('Playlist');
    const text = bytes.toString('utf8');
    if (this.playlists.size >= PLAYLIST_CACHE_ENTRIES) this.playlists.delete(this.playlists.keys().next().value!);
    this.playlists.set(cacheKey, text);
    return text;
  }

  /** The master playlist, as stored: its variants are relative, under the same signed prefix. */
  async masterPlaylist(lessonId: string, token: string): Promise<string> {
    const { lesson } = await this.authorize(lessonId, token);
    return this.playlist(lesson, 'master.m3u8');
  }

  /** A variant playlist whose segments are storage URLs signed until the token expires. */
  async variantPlaylist(lessonId: string, token: string, rendition: string): Promise<string> {
    const { lesson, expires } = await this.authorize(lessonId, token);
    if (!RENDITION_NAME.test(rendition)) throw new NotFoundError('Playlist');
    const text = await this.playlist(lesson, `${rendition}/index.m3u8`);
    const ttlSeconds = Math.max(1, expires - Math.floor(this.dependencies.clock.now().getTime() / 1000));
    const prefix = `${hlsPrefix(lesson.courseId, lesson.id)}${rendition}/`;
    const lines = await Promise.all(
      text.split('\n').map(async (line) => {
        const uri = line.trim();
        if (!uri || uri.startsWith('#')) return line;
        if (!SEGMENT_NAME.test(uri)) throw new Error(`unexpected URI in a stored playlist: ${JSON.stringify(uri)}`);
        return this.dependencies.storage.url(`${prefix}${uri}`, { ttlSeconds });
      }),
    );
    return lines.join('\n');
  }
}
