import type { DataSource } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import { ImageRejectedError, sniffImageType, toWebp16x9 } from '../../infra/images.js';
import type { Logger } from '../../infra/logger.js';
import type { ObjectStorage } from '../../infra/storage.js';
import { AppError, DependencyUnavailableError, NotFoundError } from '../../shared/errors.js';
import { LmsRepository, type AttachmentRecord } from './repository.js';
import type { CourseView, LmsService, Viewer } from './service.js';

/** Thumbnails are stored at this width, 16:9 (1280x720). */
export const THUMBNAIL_WIDTH = 1280;

const PDF_MAGIC = Buffer.from('%PDF-', 'latin1');
const FILE_NAME_MAX = 255;
const AS_ADMIN: Viewer = { userId: null, admin: true };

export interface LmsFilesSettings {
  /** Lifetime of the attachment download URLs. */
  urlTtlSeconds: number;
  thumbnailMaxPixels: number;
}

export interface AttachmentView {
  id: string;
  fileName: string;
  sizeBytes: number;
  createdAt: Date;
}

const attachmentView = (attachment: AttachmentRecord): AttachmentView => ({
  id: attachment.id,
  fileName: attachment.fileName,
  sizeBytes: attachment.sizeBytes,
  createdAt: attachment.createdAt,
});

/**
 * An uploaded file's name, fit to be shown and sent back in a Content-Disposition: no folder, no
 * control or invisible formatting characters (a right-to-left override can disguise an extension),
 * at most 255 characters with the extension kept.
 */
export function sanitizeFileName(name: string): string {
  const base = name.normalize('NFC').split(/[\\/]/).pop() ?? '';
  const clean = Array.from(
    base
      .replace(/\s+/g, ' ')
      .replace(/[\p{Cc}\p{Cf}]/gu, '')
      .trim(),
  );
  if (clean.length > FILE_NAME_MAX) {
    const extension = /\.[^.\s]{1,10}$/u.exec(clean.join(''))?.[0] ?? '';
    clean.splice(FILE_NAME_MAX - extension.length, clean.length, ...extension);
  }
  const fileName = clean.join('').trim();
  return /^\.*$/.test(fileName) ? 'attachment.pdf' : fileName;
}

/** Course thumbnails (public WebP) and lesson attachments (private PDF). */
export class LmsFilesService {
  private readonly repository: LmsRepository;

  constructor(
    private readonly dependencies: { db: DataSource; lms: LmsService; storage: ObjectStorage; clock: Clock; ids: IdGenerator; logger: Logger },
    private readonly settings: LmsFilesSettings,
  ) {
    this.repository = new LmsRepository(dependencies.db);
  }

  /**
   * Replaces a course's thumbnail: the image is checked by its bytes, made a 1280x720 WebP,
   * stored, and only then is the course pointed at it and the old file deleted. A failure at any
   * step leaves the previous thumbnail in place.
   */
  async setThumbnail(courseId: string, upload: Buffer): Promise<CourseView> {
    const { lms, storage, clock, ids } = this.dependencies;
    await lms.getCourse(courseId, { asAdmin: true });
    if (!sniffImageType(upload)) throw new AppError('unsupported_media_type', 'The thumbnail must be a JPEG, PNG or WebP image');
    let webp: Buffer;
    try {
      webp = await toWebp16x9(upload, THUMBNAIL_WIDTH, this.settings.thumbnailMaxPixels);
    } catch (error) {
      if (error instanceof ImageRejectedError && error.reason === 'too_many_pixels') {
        throw new AppError('image_too_large', `The image has more than ${this.settings.thumbnailMaxPixels} pixels`);
      }
      throw new AppError('invalid_image', 'The image cannot be read');
    }
    // the random part keeps two uploads in the same millisecond from sharing (and deleting) one key
    const key = `thumbnails/courses/${courseId}/${clock.now().getTime()}-${ids.uuid().slice(0, 8)}.webp`;
    await this.store(key, () => storage.put(key, webp, 'image/webp'));
    let replaced: { previous: string | null } | null;
    try {
      replaced = await this.repository.replaceCourseThumbnail(courseId, key, clock.now());
    } catch (error) {
      await this.deleteQuietly(key);
      throw error;
    }
    if (!replaced) {
      await this.deleteQuietly(key);
      throw new NotFoundError('Course');
    }
    if (replaced.previous) await this.deleteQuietly(replaced.previous);
    return lms.getCourse(courseId, { asAdmin: true });
  }

  async removeThumbnail(courseId: string): Promise<void> {
    const replaced = await this.repository.replaceCourseThumbnail(courseId, null, this.dependencies.clock.now());
    if (!replaced) throw new NotFoundError('Course');
    if (replaced.previous) await this.deleteQuietly(replaced.previous);
  }

  /**
   * Attaches a PDF (recognised by its first bytes) to a lesson: stored privately, then recorded.
   * A file that cannot be stored leaves no row; a row that cannot be written, no file.
   */
  async addAttachment(lessonId: string, upload: { fileName: string; bytes: Buffer }): Promise<AttachmentView> {
    const { storage, clock, ids } = this.dependencies;
    const lesson = (await this.dependencies.lms.lessonGrant(lessonId, AS_ADMIN)).lesson;
    if (!upload.bytes.subarray(0, PDF_MAGIC.length).equals(PDF_MAGIC)) throw new AppError('unsupported_media_type', 'Attachments must be PDF documents');
    const id = ids.uuid();
    const key = `attachments/courses/${lesson.courseId}/${lesson.id}/${id}.pdf`;
    await this.store(key, () => storage.put(key, upload.bytes, 'application/pdf'));
    const attachment: AttachmentRecord = {
      id,
      lessonId: lesson.id,
      fileName: sanitizeFileName(upload.fileName),
      sizeBytes: upload.bytes.length,
      storageKey: key,
      createdAt: clock.now(),
    };
    let inserted: boolean;
    try {
      inserted = await this.repository.insertAttachment(attachment);
    } catch (error) {
      await this.deleteQuietly(key);
      throw error;
    }
    if (!inserted) {
      await this.deleteQuietly(key);
      throw new NotFoundError('Lesson');
    }
    return attachmentView(attachment);
  }

  /** For whoever may open the lesson: admins, the enrolled, anyone in a free preview of a published course. */
  async listAttachments(viewer: Viewer, lessonId: string): Promise<AttachmentView[]> {
    const lesson = (await this.dependencies.lms.lessonGrant(lessonId, viewer)).lesson;
    return (await this.repository.attachmentsOf(lesson.id)).map(attachmentView);
  }

  /** A short-lived URL to download an attachment, for whoever may open its lesson. */
  async attachmentUrl(viewer: Viewer, lessonId: string, attachmentId: string): Promise<{ url: string; expiresAt: Date }> {
    const lesson = (await this.dependencies.lms.lessonGrant(lessonId, viewer)).lesson;
    const attachment = await this.repository.findAttachment(lesson.id, attachmentId);
    if (!attachment) throw new NotFoundError('Attachment');
    const { urlTtlSeconds } = this.settings;
    // whole seconds, as the signed URLs count them
    const expiresAt = new Date((Math.floor(this.dependencies.clock.now().getTime() / 1000) + urlTtlSeconds) * 1000);
    return { url: await this.dependencies.storage.url(attachment.storageKey, { ttlSeconds: urlTtlSeconds }), expiresAt };
  }

  /** Deletes the row, then its file. */
  async deleteAttachment(lessonId: string, attachmentId: string): Promise<void> {
    const deleted = await this.repository.deleteAttachment(lessonId, attachmentId);
    if (!deleted) throw new NotFoundError('Attachment');
    await this.deleteQuietly(deleted.storageKey);
  }

  /** Runs a storage write; a failure is the storage's, answered 503. */
  private async store(key: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.dependencies.logger.error({ err: error, key }, 'could not store a course file');
      throw new DependencyUnavailableError('File storage is unavailable; try again later');
    }
  }

  /** An orphaned file costs a little storage; a failed delete must not fail the request. */
  private async deleteQuietly(key: string): Promise<void> {
    await this.dependencies.storage.delete(key).catch((error: unknown) => this.dependencies.logger.warn({ err: error, key }, 'could not delete a course file'));
  }
}
