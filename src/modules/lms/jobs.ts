import type { JobDefinition } from '../../infra/jobs.js';
import type { ObjectStorage } from '../../infra/storage.js';
import type { TranscodePayload, VideoService } from './video.js';

export const TRANSCODE_JOB = 'lms.transcode';
export const DELETE_FILES_JOB = 'lms.delete-files';

/** Each run stops, and is retried, past the timeout; ffmpeg uses the cores, so one at a time per process. */
export function lmsJobs(
  video: VideoService,
  storage: ObjectStorage,
  settings: { transcodeTimeoutMs: number; retryDelayMs: number; attempts: number },
): Array<JobDefinition<never>> {
  const transcode: JobDefinition<TranscodePayload> = {
    name: TRANSCODE_JOB,
    attempts: settings.attempts,
    backoffMs: settings.retryDelayMs,
    concurrency: 1,
    timeoutMs: settings.transcodeTimeoutMs,
    handle: (payload, context) => video.transcode(payload, context),
  };
  // the files of a deleted lesson: its source, renditions, poster and attachments
  const deleteFiles: JobDefinition<{ prefixes: string[] }> = {
    name: DELETE_FILES_JOB,
    attempts: 5,
    backoffMs: 30_000,
    handle: async ({ prefixes }) => {
      for (const prefix of prefixes) await storage.deletePrefix(prefix);
    },
  };
  return [transcode, deleteFiles] as Array<JobDefinition<never>>;
}
