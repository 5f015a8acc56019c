import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { CourseLevel } from './entities.js';
import { LmsRepository, type CourseChanges, type CourseRecord } from './repository.js';

export interface Money {
  amount: number;
  currency: string;
}

export interface CourseView {
  id: string;
  title: string;
  description: string;
  level: CourseLevel;
  price: Money;
  free: boolean;
  published: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface CourseInput {
  title: string;
  description: string;
  level: CourseLevel;
  price: Money;
  published: boolean;
}

export interface CourseUpdate {
  title?: string | undefined;
  description?: string | undefined;
  level?: CourseLevel | undefined;
  price?: Money | undefined;
  published?: boolean | undefined;
}

/** What the payments module needs to sell a course. */
export interface CourseForSale {
  id: string;
  title: string;
  priceMinor: number;
  currency: string;
}

export interface EnrollmentView {
  courseId: string;
  enrolledAt: Date;
  orderId: string | null;
}

const view = (course: CourseRecord): CourseView => ({
  id: course.id,
  title: course.title,
  description: course.description,
  level: course.level,
  price: { amount: course.priceMinor, currency: course.currency },
  free: course.priceMinor === 0,
  published: course.published,
  createdAt: course.createdAt,
  updatedAt: course.updatedAt,
});

/** The course catalogue and who may study what. */
export class LmsService {
  private readonly repository: LmsRepository;
  constructor(private readonly dependencies: { db: DataSource; clock: Clock; ids: IdGenerator }) {
    this.repository = new LmsRepository(dependencies.db);
  }

  async createCourse(adminId: string, input: CourseInput): Promise<CourseView> {
    const now = this.dependencies.clock.now();
    const course: CourseRecord = {
      id: this.dependencies.ids.uuid(),
      title: input.title,
      description: input.description,
      level: input.level,
      priceMinor: input.price.amount,
      currency: input.price.currency,
      published: input.published,
      createdBy: adminId,
      createdAt: now,
      updatedAt: now,
    };
    await this.repository.insertCourse(course);
    return view(course);
  }

  async updateCourse(id: string, update: CourseUpdate): Promise<CourseView> {
    const changes: CourseChanges = {
      ...(update.title !== undefined ? { title: update.title } : {}),
      ...(update.description !== undefined ? { description: update.description } : {}),
      ...(update.level !== undefined ? { level: update.level } : {}),
      ...(update.price !== undefined ? { priceMinor: update.price.amount, currency: update.price.currency } : {}),
      ...(update.published !== undefined ? { published: update.published } : {}),
    };
    const course = await this.repository.updateCourse(id, changes, this.dependencies.clock.now());
    if (!course) throw new NotFoundError('Course');
    return view(course);
  }

  /** Hides the course from the catalogue and from sale; enrollments and orders keep it. */
  async deleteCourse(id: string): Promise<void> {
    if (!(await this.repository.softDeleteCourse(id, this.dependencies.clock.now()))) throw new NotFoundError('Course');
  }

  /** A published course; admins also see unpublished ones. */
  async getCourse(id: string, options: { asAdmin: boolean }): Promise<CourseView> {
    const course = await this.repository.findCourse(id, { publishedOnly: !options.asAdmin });
    if (!course) throw new NotFoundError('Course');
    return view(course);
  }

  async listCourses(filter: { level?: CourseLevel | undefined; asAdmin: boolean }, limit: number, cursor?: string) {
    const rows = await this.repository.listCourses(
      { includeUnpublished: filter.asAdmin, ...(filter.level ? { level: filter.level } : {}) },
      limit,
      decodeCursor(cursor),
    );
    return toPage(rows, limit, view);
  }

  /** A free course enrolls at once (again after nothing: enrolling twice is one enrollment); a paid one needs a checkout. */
  async enrollFree(userId: string, courseId: string): Promise<{ enrollment: EnrollmentView; created: boolean }> {
    const course = await this.repository.findCourse(courseId, { publishedOnly: true });
    if (!course) throw new NotFoundError('Course');
    const existing = await this.repository.activeEnrollment(userId, courseId);
    if (existing) return { enrollment: { courseId, enrolledAt: existing.createdAt, orderId: existing.orderId }, created: false };
    if (course.priceMinor > 0) {
      throw new AppError('payment_required', 'This course is paid: buy it through a checkout first', {
        price: { amount: course.priceMinor, currency: course.currency },
        checkout: { method: 'POST', path: '/payments/create-checkout-session', body: { courseId } },
      });
    }
    const now = this.dependencies.clock.now();
    const created = await this.repository.enroll(this.dependencies.db, { id: this.dependencies.ids.uuid(), userId, courseId, orderId: null, now });
    const enrollment = created ? { courseId, enrolledAt: now, orderId: null } : await this.enrollmentOf(userId, courseId);
    return { enrollment, created };
  }

  private async enrollmentOf(userId: string, courseId: string): Promise<EnrollmentView> {
    const existing = await this.repository.activeEnrollment(userId, courseId);
    if (!existing) throw new NotFoundError('Enrollment');
    return { courseId, enrolledAt: existing.createdAt, orderId: existing.orderId };
  }

  // --- for the payments module

  /** A course that can be bought now (published, not deleted), or null. */
  async courseForSale(courseId: string): Promise<CourseForSale | null> {
    const course = await this.repository.findCourse(courseId, { publishedOnly: true });
    return course && { id: course.id, title: course.title, priceMinor: course.priceMinor, currency: course.currency };
  }

  async isEnrolled(userId: string, courseId: string, manager?: EntityManager): Promise<boolean> {
    return Boolean(await this.repository.activeEnrollment(userId, courseId, manager));
  }

  /** Enrolls the buyer of a paid order, in the payments module's transaction (so the order and the access commit together). */
  async grantPurchase(manager: EntityManager, purchase: { userId: string; courseId: string; orderId: string }): Promise<boolean> {
    return this.repository.enroll(manager, { id: this.dependencies.ids.uuid(), ...purchase, now: this.dependencies.clock.now() });
  }

  /** Takes back the access an order gave (a full refund), in the payments module's transaction. */
  async revokePurchase(manager: EntityManager, orderId: string): Promise<boolean> {
    return this.repository.revokeByOrder(manager, orderId, this.dependencies.clock.now());
  }
}
