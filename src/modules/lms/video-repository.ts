import type { DataSource } from 'typeorm';
import { updateReturning } from '../../infra/sql.js';
import type { VideoStatus } from './entities.js';

/** The upload a video change is for: every write below only lands while it is still the lesson's current upload. */
export interface UploadRef {
  lessonId: string;
  uploadId: string;
}

/**
 * The SQL of lesson videos. Each transcoding step names its upload, so a job of a video that has
 * since been replaced changes nothing.
 */
export class VideoRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Makes `uploadId` the lesson's video (earlier jobs stop at their next step). Returns the
   * previous source file's key, or null when there is no such lesson.
   */
  async startUpload(
    ref: UploadRef,
    upload: { sourceKey: string; uploadedBy: string; status: VideoStatus; now: Date },
  ): Promise<{ courseId: string; previousSourceKey: string | null } | null> {
    const [row] = await updateReturning<{ courseId: string; previousSourceKey: string | null }>(
      this.db,
      `WITH previous AS (SELECT id, video_source_key FROM lessons WHERE id = $1 FOR UPDATE)
       UPDATE lessons AS l SET video_upload_id = $2, video_source_key = $3, video_uploaded_by = $4, video_status = $5, video_progress = 0,
         video_error = NULL, video_job_id = NULL, updated_at = $6
       FROM previous WHERE l.id = previous.id
       RETURNING l.course_id AS "courseId", previous.video_source_key AS "previousSourceKey"`,
      [ref.lessonId, ref.uploadId, upload.sourceKey, upload.uploadedBy, upload.status, upload.now],
    );
    return row ?? null;
  }

  private async changeCurrent(ref: UploadRef, assignments: string, values: unknown[]): Promise<boolean> {
    const [, count]: [unknown, number] = await this.db.query(
      `UPDATE lessons SET ${assignments} WHERE id = $1 AND video_upload_id = $2 AND video_status IN ('uploaded', 'transcoding')`,
      [ref.lessonId, ref.uploadId, ...values],
    );
    return count > 0;
  }

  async recordJob(ref: UploadRef, jobId: string): Promise<boolean> {
    return this.changeCurrent(ref, 'video_job_id = $3', [jobId]);
  }

  /** The job started (again): transcoding, from 0 %. */
  async markTranscoding(ref: UploadRef, jobId: string, now: Date): Promise<boolean> {
    return this.changeCurrent(ref, `video_status = 'transcoding', video_job_id = $3, video_progress = 0, updated_at = $4`, [jobId, now]);
  }

  /** False once the upload was replaced: the job should stop. */
  async reportProgress(ref: UploadRef, percent: number): Promise<boolean> {
    return this.changeCurrent(ref, 'video_progress = $3', [percent]);
  }

  /** What a run that will be retried went wrong with, for the admin watching. */
  async recordRetryError(ref: UploadRef, error: string): Promise<void> {
    await this.changeCurrent(ref, 'video_error = $3', [error]);
  }

  /** Ends the current upload's transcoding as failed or impossible here. */
  async markUnplayable(ref: UploadRef, status: 'failed' | 'transcoding_unavailable', error: string | null, now: Date): Promise<boolean> {
    return this.changeCurrent(ref, 'video_status = $3, video_error = $4, updated_at = $5', [status, error, now]);
  }

  /** The video plays: its renditions, duration and poster recorded. Returns the poster it replaces (to delete), or null when the upload was replaced. */
  async markReady(
    ref: UploadRef,
    ready: { durationSeconds: number; heights: number[]; thumbnailKey: string | null; now: Date },
  ): Promise<{ previousThumbnailKey: string | null; title: string; courseId: string; uploadedBy: string | null } | null> {
    const [row] = await updateReturning<{ previousThumbnailKey: string | null; title: string; courseId: string; uploadedBy: string | null }>(
      this.db,
      `WITH previous AS (SELECT id, thumbnail_key FROM lessons WHERE id = $1 AND video_upload_id = $2 AND video_status IN ('uploaded', 'transcoding') FOR UPDATE)
       UPDATE lessons AS l SET video_status = 'ready', video_progress = 100, video_error = NULL, duration_seconds = $3, video_heights = $4,
         thumbnail_key = coalesce($5, l.thumbnail_key), updated_at = $6
       FROM previous WHERE l.id = previous.id
       RETURNING CASE WHEN $5::varchar IS NULL THEN NULL ELSE previous.thumbnail_key END AS "previousThumbnailKey", l.title, l.course_id AS "courseId",
         l.video_uploaded_by AS "uploadedBy"`,
      [ref.lessonId, ref.uploadId, ready.durationSeconds, ready.heights, ready.thumbnailKey, ready.now],
    );
    return row ?? null;
  }
}
