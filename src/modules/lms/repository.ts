import type { DataSource, EntityManager } from 'typeorm';
import { updateReturning } from '../../infra/sql.js';
import type { Keyset } from '../../shared/pagination.js';
import { Course, type Enrollment, type CourseLevel, type Lesson, type LessonAttachment, type LessonProgress } from './entities.js';

export type CourseRecord = Omit<Course, 'creator' | 'deletedAt'>;
export type LessonRecord = Omit<Lesson, 'course' | 'videoUploader'>;
/** What a new lesson is given; the rest starts empty. */
export type NewLesson = Pick<LessonRecord, 'id' | 'courseId' | 'title' | 'content' | 'durationSeconds' | 'freePreview' | 'createdAt'>;
export type ProgressRecord = Omit<LessonProgress, 'user' | 'lesson'>;
export type AttachmentRecord = Omit<LessonAttachment, 'lesson'>;

export interface LessonChanges {
  title?: string;
  content?: string;
  durationSeconds?: number;
  freePreview?: boolean;
}

const LESSON_COLUMNS = `id, course_id AS "courseId", title, content, position, duration_seconds AS "durationSeconds", free_preview AS "freePreview",
  video_status AS "videoStatus", video_upload_id AS "videoUploadId", video_source_key AS "videoSourceKey", video_uploaded_by AS "videoUploadedBy",
  video_job_id AS "videoJobId", video_progress AS "videoProgress", video_error AS "videoError", video_heights AS "videoHeights",
  thumbnail_key AS "thumbnailKey", created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface CourseChanges {
  title?: string;
  description?: string;
  level?: CourseLevel;
  priceMinor?: number;
  currency?: string;
  published?: boolean;
}

/** `column = $n` for each change given (from `$first` on), and their values, for an UPDATE of only what changed. */
function setClause<K extends string>(
  columns: Record<K, string>,
  changes: Partial<Record<K, unknown>>,
  first: number,
): { assignments: string[]; values: unknown[] } {
  const entries = (Object.entries(changes) as Array<[K, unknown]>).filter(([, value]) => value !== undefined);
  return { assignments: entries.map(([name], index) => `${columns[name]} = $${index + first}`), values: entries.map(([, value]) => value) };
}

const ATTACHMENT_COLUMNS = `id, lesson_id AS "lessonId", file_name AS "fileName", size_bytes AS "sizeBytes", storage_key AS "storageKey", created_at AS "createdAt"`;

const COURSE_COLUMNS = `id, title, description, level, price_minor AS "priceMinor", currency, published, thumbnail_key AS "thumbnailKey", created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt"`;

/** The only SQL of the LMS module. */
export class LmsRepository {
  constructor(private readonly db: DataSource) {}

  async insertCourse(course: CourseRecord): Promise<void> {
    await this.db.getRepository(Course).insert({ ...course, deletedAt: null });
  }

  /** A course that is not deleted; unpublished ones too unless `publishedOnly`. */
  async findCourse(id: string, options: { publishedOnly: boolean }, manager: EntityManager | DataSource = this.db): Promise<CourseRecord | null> {
    const rows: CourseRecord[] = await manager.query(
      `SELECT ${COURSE_COLUMNS} FROM courses WHERE id = $1 AND deleted_at IS NULL ${options.publishedOnly ? 'AND published' : ''}`,
      [id],
    );
    return rows[0] ?? null;
  }

  async updateCourse(id: string, changes: CourseChanges, now: Date): Promise<CourseRecord | null> {
    const columns: Record<keyof CourseChanges, string> = {
      title: 'title',
      description: 'description',
      level: 'level',
      priceMinor: 'price_minor',
      currency: 'currency',
      published: 'published',
    };
    const { assignments, values } = setClause(columns, changes, 3);
    const [row] = await updateReturning<CourseRecord>(
      this.db,
      `UPDATE courses SET ${[...assignments, 'updated_at = $2'].join(', ')} WHERE id = $1 AND deleted_at IS NULL RETURNING ${COURSE_COLUMNS}`,
      [id, now, ...values],
    );
    return row ?? null;
  }

  async softDeleteCourse(id: string, now: Date): Promise<boolean> {
    const [, count]: [unknown, number] = await this.db.query(`UPDATE courses SET deleted_at = $2, published = false WHERE id = $1 AND deleted_at IS NULL`, [
      id,
      now,
    ]);
    return count > 0;
  }

  /**
   * Points a course (not deleted) at another thumbnail, or at none; answers the key it pointed at,
   * or null when there is no such course. The row is locked first, so of two concurrent uploads
   * each learns the key the other replaced.
   */
  async replaceCourseThumbnail(id: string, key: string | null, now: Date): Promise<{ previous: string | null } | null> {
    const [row] = await updateReturning<{ previous: string | null }>(
      this.db,
      `WITH old AS (SELECT id, thumbnail_key FROM courses WHERE id = $1 AND deleted_at IS NULL FOR UPDATE)
       UPDATE courses c SET thumbnail_key = $2, updated_at = $3 FROM old WHERE c.id = old.id RETURNING old.thumbnail_key AS previous`,
      [id, key, now],
    );
    return row ?? null;
  }

  /** Newest first; published only unless `includeUnpublished` (admins). */
  async listCourses(filter: { level?: CourseLevel; includeUnpublished: boolean }, limit: number, after?: Keyset): Promise<CourseRecord[]> {
    const conditions = ['deleted_at IS NULL'];
    const parameters: unknown[] = [limit + 1];
    if (!filter.includeUnpublished) conditions.push('published');
    if (filter.level) {
      parameters.push(filter.level);
      conditions.push(`level = $${parameters.length}`);
    }
    if (after) {
      parameters.push(after.createdAt, after.id);
      conditions.push(`(created_at, id) < ($${parameters.length - 1}, $${parameters.length})`);
    }
    return this.db.query(`SELECT ${COURSE_COLUMNS} FROM courses WHERE ${conditions.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $1`, parameters);
  }

  async activeEnrollment(
    userId: string,
    courseId: string,
    manager: EntityManager | DataSource = this.db,
  ): Promise<Pick<Enrollment, 'id' | 'orderId' | 'createdAt'> | null> {
    const rows: Array<Pick<Enrollment, 'id' | 'orderId' | 'createdAt'>> = await manager.query(
      `SELECT id, order_id AS "orderId", created_at AS "createdAt" FROM enrollments WHERE user_id = $1 AND course_id = $2 AND revoked_at IS NULL`,
      [userId, courseId],
    );
    return rows[0] ?? null;
  }

  /**
   * Enrolls, or re-enrolls after a revocation; an active enrollment is left as it is. Returns
   * whether this call enrolled the user.
   */
  async enroll(
    manager: EntityManager | DataSource,
    enrollment: { id: string; userId: string; courseId: string; orderId: string | null; now: Date },
  ): Promise<boolean> {
    const rows: unknown[] = await manager.query(
      `INSERT INTO enrollments (id, user_id, course_id, order_id, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)
       ON CONFLICT ON CONSTRAINT enrollments_user_course_unique
       DO UPDATE SET order_id = EXCLUDED.order_id, created_at = EXCLUDED.created_at, revoked_at = NULL WHERE enrollments.revoked_at IS NOT NULL
       RETURNING id`,
      [enrollment.id, enrollment.userId, enrollment.courseId, enrollment.orderId, enrollment.now],
    );
    return rows.length > 0;
  }

  /** Revokes the enrollment that `orderId` paid for (not one bought again by another order). */
  async revokeByOrder(manager: EntityManager, orderId: string, now: Date): Promise<boolean> {
    const [, count]: [unknown, number] = await manager.query(`UPDATE enrollments SET revoked_at = $2 WHERE order_id = $1 AND revoked_at IS NULL`, [
      orderId,
      now,
    ]);
    return count > 0;
  }

  // --- lesson attachments

  /** Records an attachment of a lesson; false when the lesson does not exist (any more). */
  async insertAttachment(attachment: AttachmentRecord): Promise<boolean> {
    const rows: unknown[] = await this.db.query(
      `INSERT INTO lesson_attachments (id, lesson_id, file_name, size_bytes, storage_key, created_at)
       SELECT $1, id, $3, $4, $5, $6 FROM lessons WHERE id = $2 RETURNING id`,
      [attachment.id, attachment.lessonId, attachment.fileName, attachment.sizeBytes, attachment.storageKey, attachment.createdAt],
    );
    return rows.length > 0;
  }

  /** The lesson's attachments, oldest first. */
  async attachmentsOf(lessonId: string): Promise<AttachmentRecord[]> {
    return this.db.query(`SELECT ${ATTACHMENT_COLUMNS} FROM lesson_attachments WHERE lesson_id = $1 ORDER BY created_at, id`, [lessonId]);
  }

  async findAttachment(lessonId: string, id: string): Promise<AttachmentRecord | null> {
    const rows: AttachmentRecord[] = await this.db.query(`SELECT ${ATTACHMENT_COLUMNS} FROM lesson_attachments WHERE id = $1 AND lesson_id = $2`, [
      id,
      lessonId,
    ]);
    return rows[0] ?? null;
  }

  /** Deletes an attachment of the lesson; answers what it was (its file is the caller's to delete), or null. */
  async deleteAttachment(lessonId: string, id: string): Promise<AttachmentRecord | null> {
    const [row] = await updateReturning<AttachmentRecord>(
      this.db,
      `DELETE FROM lesson_attachments WHERE id = $1 AND lesson_id = $2 RETURNING ${ATTACHMENT_COLUMNS}`,
      [id, lessonId],
    );
    return row ?? null;
  }

  // --- lessons

  /** Appends a lesson to its course (the course row locked, so two appends take turns). Null when the course does not exist. */
  async appendLesson(lesson: NewLesson): Promise<LessonRecord | null> {
    return this.db.transaction(async (manager) => {
      const course: unknown[] = await manager.query(`SELECT id FROM courses WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, [lesson.courseId]);
      if (!course.length) return null;
      const rows: LessonRecord[] = await manager.query(
        `INSERT INTO lessons (id, course_id, title, content, position, duration_seconds, free_preview, video_status, created_at, updated_at)
         SELECT $1, $2, $3, $4, coalesce(max(position), 0) + 1, $5, $6, 'none', $7, $7 FROM lessons WHERE course_id = $2
         RETURNING ${LESSON_COLUMNS}`,
        [lesson.id, lesson.courseId, lesson.title, lesson.content, lesson.durationSeconds, lesson.freePreview, lesson.createdAt],
      );
      return rows[0] ?? null;
    });
  }

  async findLesson(id: string): Promise<LessonRecord | null> {
    const rows: LessonRecord[] = await this.db.query(`SELECT ${LESSON_COLUMNS} FROM lessons WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }

  async lessonsOf(courseId: string): Promise<LessonRecord[]> {
    return this.db.query(`SELECT ${LESSON_COLUMNS} FROM lessons WHERE course_id = $1 ORDER BY position`, [courseId]);
  }

  async updateLesson(id: string, changes: LessonChanges, now: Date): Promise<LessonRecord | null> {
    const columns: Record<keyof LessonChanges, string> = {
      title: 'title',
      content: 'content',
      durationSeconds: 'duration_seconds',
      freePreview: 'free_preview',
    };
    const { assignments, values } = setClause(columns, changes, 3);
    const [row] = await updateReturning<LessonRecord>(
      this.db,
      `UPDATE lessons SET ${[...assignments, 'updated_at = $2'].join(', ')} WHERE id = $1 RETURNING ${LESSON_COLUMNS}`,
      [id, now, ...values],
    );
    return row ?? null;
  }

  /** Deletes a lesson and closes the gap in its course's order; null when there was none. */
  async deleteLesson(id: string): Promise<{ courseId: string } | null> {
    return this.db.transaction(async (manager) => {
      // TypeORM answers a DELETE ... RETURNING as [rows, count], as an UPDATE
      const [deleted] = await updateReturning<{ courseId: string; position: number }>(
        manager,
        `DELETE FROM lessons WHERE id = $1 RETURNING course_id AS "courseId", position`,
        [id],
      );
      if (!deleted) return null;
      await manager.query(`UPDATE lessons SET position = position - 1 WHERE course_id = $1 AND position > $2`, [deleted.courseId, deleted.position]);
      return { courseId: deleted.courseId };
    });
  }

  /**
   * Puts the course's lessons in the given order, in one transaction. False when `lessonIds`
   * is not exactly the course's lessons.
   */
  async reorderLessons(courseId: string, lessonIds: readonly string[], now: Date): Promise<boolean> {
    return this.db.transaction(async (manager) => {
      await manager.query(`SELECT id FROM courses WHERE id = $1 FOR UPDATE`, [courseId]);
      const current: Array<{ id: string }> = await manager.query(`SELECT id FROM lessons WHERE course_id = $1`, [courseId]);
      const wanted = new Set(lessonIds);
      if (wanted.size !== lessonIds.length || current.length !== wanted.size || current.some(({ id }) => !wanted.has(id))) return false;
      await manager.query(
        `UPDATE lessons AS l SET position = v.position, updated_at = $3 FROM unnest($2::uuid[]) WITH ORDINALITY AS v(id, position) WHERE l.id = v.id AND l.course_id = $1`,
        [courseId, lessonIds, now],
      );
      return true;
    });
  }

  // --- progress

  /** Watch time only grows (a late or repeated report changes nothing). One statement: a player calls it every few seconds. */
  async recordWatch(userId: string, lessonId: string, watchSeconds: number, now: Date): Promise<ProgressRecord> {
    const rows: ProgressRecord[] = await this.db.query(
      `INSERT INTO lesson_progress (user_id, lesson_id, watch_seconds, completed_at, updated_at) VALUES ($1, $2, $3, NULL, $4)
       ON CONFLICT (user_id, lesson_id) DO UPDATE SET watch_seconds = greatest(lesson_progress.watch_seconds, EXCLUDED.watch_seconds), updated_at = EXCLUDED.updated_at
       RETURNING user_id AS "userId", lesson_id AS "lessonId", watch_seconds AS "watchSeconds", completed_at AS "completedAt", updated_at AS "updatedAt"`,
      [userId, lessonId, watchSeconds, now],
    );
    return rows[0]!;
  }

  /** Marks a lesson completed (the first time counts); returns when it was. */
  async completeLesson(userId: string, lessonId: string, now: Date): Promise<Date> {
    const rows: Array<{ completedAt: Date }> = await this.db.query(
      `INSERT INTO lesson_progress (user_id, lesson_id, watch_seconds, completed_at, updated_at) VALUES ($1, $2, 0, $3, $3)
       ON CONFLICT (user_id, lesson_id) DO UPDATE SET completed_at = coalesce(lesson_progress.completed_at, EXCLUDED.completed_at), updated_at = EXCLUDED.updated_at
       RETURNING completed_at AS "completedAt"`,
      [userId, lessonId, now],
    );
    return rows[0]!.completedAt;
  }

  /** The user's progress in every lesson of a course they touched. */
  async progressIn(userId: string, courseId: string): Promise<ProgressRecord[]> {
    return this.db.query(
      `SELECT p.user_id AS "userId", p.lesson_id AS "lessonId", p.watch_seconds AS "watchSeconds", p.completed_at AS "completedAt", p.updated_at AS "updatedAt"
       FROM lesson_progress p JOIN lessons l ON l.id = p.lesson_id WHERE p.user_id = $1 AND l.course_id = $2`,
      [userId, courseId],
    );
  }

  /** The user's active enrollments, newest first, with their courses (deleted ones too: they were bought). */
  async enrolledCourses(userId: string): Promise<Array<CourseRecord & { enrolledAt: Date }>> {
    return this.db.query(
      `SELECT c.id, c.title, c.description, c.level, c.price_minor AS "priceMinor", c.currency, c.published, c.thumbnail_key AS "thumbnailKey", c.created_by AS "createdBy",
              c.created_at AS "createdAt", c.updated_at AS "updatedAt", e.created_at AS "enrolledAt"
       FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE e.user_id = $1 AND e.revoked_at IS NULL ORDER BY e.created_at DESC, e.id DESC`,
      [userId],
    );
  }
}
