import type { DataSource, EntityManager } from 'typeorm';
import { updateReturning } from '../../infra/sql.js';
import type { Keyset } from '../../shared/pagination.js';
import { Course, type Enrollment, type CourseLevel } from './entities.js';

export type CourseRecord = Omit<Course, 'creator' | 'deletedAt'>;

export interface CourseChanges {
  title?: string;
  description?: string;
  level?: CourseLevel;
  priceMinor?: number;
  currency?: string;
  published?: boolean;
}

const COURSE_COLUMNS = `id, title, description, level, price_minor AS "priceMinor", currency, published, created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt"`;

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
    const entries = Object.entries(changes).filter(([, value]) => value !== undefined) as Array<[keyof CourseChanges, unknown]>;
    const assignments = entries.map(([name], index) => `${columns[name]} = $${index + 3}`);
    const [row] = await updateReturning<CourseRecord>(
      this.db,
      `UPDATE courses SET ${[...assignments, 'updated_at = $2'].join(', ')} WHERE id = $1 AND deleted_at IS NULL RETURNING ${COURSE_COLUMNS}`,
      [id, now, ...entries.map(([, value]) => value)],
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
}
