import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { EventBus } from '../../infra/events.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { JobQueue } from '../../infra/jobs.js';
import type { Logger } from '../../infra/logger.js';
import type { ObjectStorage } from '../../infra/storage.js';
import { AppError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { CourseLevel, VideoStatus } from './entities.js';
import './events.js';
import { DELETE_FILES_JOB } from './jobs.js';
import { LmsRepository, type CourseChanges, type CourseRecord, type LessonRecord } from './repository.js';

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
  /** Its 16:9 WebP (public), or null. */
  thumbnailUrl: string | null;
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

/** A checkout opened for a paid course: where to pay, and the order to follow. */
export interface CourseCheckoutView {
  orderId: string;
  url: string;
  provider: string;
}

/** Opens the checkout of a paid course for a buyer (the payments module). */
export interface CourseSeller {
  openCheckout(buyer: { userId: string; email: string }, courseId: string): Promise<CourseCheckoutView>;
}

export interface EnrollmentView {
  courseId: string;
  enrolledAt: Date;
  orderId: string | null;
}

export interface LessonView {
  id: string;
  courseId: string;
  title: string;
  position: number;
  durationSeconds: number;
  freePreview: boolean;
  videoStatus: VideoStatus;
  /** Transcoding progress, 0-100. */
  videoProgress: number;
  /** The poster frame of its video (public), once transcoded. */
  thumbnailUrl: string | null;
  /** Admins only: the transcoding job (`GET /admin/jobs/:id`) and why the video failed. */
  videoJobId?: string | null;
  videoError?: string | null;
  /** Null for whom it is locked: not enrolled, and not a free preview. */
  content: string | null;
  locked: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface LessonInput {
  title: string;
  content: string;
  durationSeconds: number;
  freePreview: boolean;
}

export interface LessonUpdate {
  title?: string | undefined;
  content?: string | undefined;
  durationSeconds?: number | undefined;
  freePreview?: boolean | undefined;
}

export interface CourseProgressView {
  courseId: string;
  percent: number;
  lessons: number;
  completedLessonIds: string[];
  nextLesson: { id: string; title: string; position: number } | null;
  totalWatchSeconds: number;
}

/** Who looks: signed in or not, admin or not. */
export interface Viewer {
  userId: string | null;
  admin: boolean;
}

/** On what grounds a viewer may watch a lesson. */
export type LessonGrant = 'admin' | 'enrolled' | 'preview';

const courseView = (course: CourseRecord, thumbnailUrl: string | null): CourseView => ({
  id: course.id,
  title: course.title,
  description: course.description,
  level: course.level,
  price: { amount: course.priceMinor, currency: course.currency },
  free: course.priceMinor === 0,
  published: course.published,
  thumbnailUrl,
  createdAt: course.createdAt,
  updatedAt: course.updatedAt,
});

export interface LmsSettings {
  /** Lifetime of the URLs handed out (thumbnails). */
  urlTtlSeconds: number;
}

/** The course catalogue and who may study what. */
export class LmsService {
  private readonly repository: LmsRepository;
  private seller: CourseSeller | null = null;
  constructor(
    private readonly dependencies: {
      db: DataSource;
      clock: Clock;
      ids: IdGenerator;
      events: EventBus;
      logger: Logger;
      storage: ObjectStorage;
      jobs: JobQueue;
    },
    private readonly settings: LmsSettings,
  ) {
    this.repository = new LmsRepository(dependencies.db);
  }

  private async lessonView(lesson: LessonRecord, unlocked: boolean, asAdmin: boolean): Promise<LessonView> {
    const thumbnailUrl = lesson.thumbnailKey
      ? await this.dependencies.storage.url(lesson.thumbnailKey, { ttlSeconds: this.settings.urlTtlSeconds, public: true })
      : null;
    return {
      id: lesson.id,
      courseId: lesson.courseId,
      title: lesson.title,
      position: lesson.position,
      durationSeconds: lesson.durationSeconds,
      freePreview: lesson.freePreview,
      videoStatus: lesson.videoStatus,
      videoProgress: lesson.videoProgress,
      thumbnailUrl,
      ...(asAdmin ? { videoJobId: lesson.videoJobId, videoError: lesson.videoError } : {}),
      content: unlocked ? lesson.content : null,
      locked: !unlocked,
      createdAt: lesson.createdAt,
      updatedAt: lesson.updatedAt,
    };
  }

  private lessonViews(lessons: LessonRecord[], unlocked: (lesson: LessonRecord) => boolean, asAdmin: boolean): Promise<LessonView[]> {
    return Promise.all(lessons.map((lesson) => this.lessonView(lesson, unlocked(lesson), asAdmin)));
  }

  /** A course as clients see it: its thumbnail as a URL. */
  private async view(course: CourseRecord): Promise<CourseView> {
    const { thumbnailKey } = course;
    return courseView(
      course,
      thumbnailKey ? await this.dependencies.storage.url(thumbnailKey, { ttlSeconds: this.settings.urlTtlSeconds, public: true }) : null,
    );
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
      thumbnailKey: null,
      createdBy: adminId,
      createdAt: now,
      updatedAt: now,
    };
    await this.repository.insertCourse(course);
    return this.view(course);
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
    return this.view(course);
  }

  /** Hides the course from the catalogue and from sale; enrollments and orders keep it. */
  async deleteCourse(id: string): Promise<void> {
    if (!(await this.repository.softDeleteCourse(id, this.dependencies.clock.now()))) throw new NotFoundError('Course');
  }

  /** A published course; admins also see unpublished ones. */
  async getCourse(id: string, options: { asAdmin: boolean }): Promise<CourseView> {
    const course = await this.repository.findCourse(id, { publishedOnly: !options.asAdmin });
    if (!course) throw new NotFoundError('Course');
    return this.view(course);
  }

  async listCourses(filter: { level?: CourseLevel | undefined; asAdmin: boolean }, limit: number, cursor?: string) {
    const rows = await this.repository.listCourses(
      { includeUnpublished: filter.asAdmin, ...(filter.level ? { level: filter.level } : {}) },
      limit,
      decodeCursor(cursor),
    );
    const page = toPage(rows, limit, (row) => row);
    return { items: await Promise.all(page.items.map((course) => this.view(course))), nextCursor: page.nextCursor };
  }

  /**
   * Enrolls in a course: a free one at once (enrolling twice is one enrollment); a paid one
   * opens the seller's checkout (the payments module), whose paid webhook enrolls the buyer.
   * Without a seller, a paid course answers 402 with what to call.
   */
  async enroll(
    buyer: { userId: string; email: string },
    courseId: string,
  ): Promise<{ kind: 'enrolled'; enrollment: EnrollmentView; created: boolean } | { kind: 'checkout'; checkout: CourseCheckoutView }> {
    const course = await this.repository.findCourse(courseId, { publishedOnly: true });
    if (!course) throw new NotFoundError('Course');
    const existing = await this.repository.activeEnrollment(buyer.userId, courseId);
    if (existing) return { kind: 'enrolled', enrollment: { courseId, enrolledAt: existing.createdAt, orderId: existing.orderId }, created: false };
    if (course.priceMinor > 0) {
      if (this.seller) return { kind: 'checkout', checkout: await this.seller.openCheckout(buyer, courseId) };
      throw new AppError('payment_required', 'This course is paid: buy it through a checkout first', {
        price: { amount: course.priceMinor, currency: course.currency },
        checkout: { method: 'POST', path: '/payments/create-checkout-session', body: { courseId } },
      });
    }
    const now = this.dependencies.clock.now();
    const created = await this.repository.enroll(this.dependencies.db, {
      id: this.dependencies.ids.uuid(),
      userId: buyer.userId,
      courseId,
      orderId: null,
      now,
    });
    const enrollment = created ? { courseId, enrolledAt: now, orderId: null } : await this.enrollmentOf(buyer.userId, courseId);
    return { kind: 'enrolled', enrollment, created };
  }

  /** Who sells the paid courses: bound by the container once the payments module exists (it depends on this one). */
  sellThrough(seller: CourseSeller): void {
    this.seller = seller;
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

  // --- lessons

  async createLesson(courseId: string, input: LessonInput): Promise<LessonView> {
    const now = this.dependencies.clock.now();
    const lesson = await this.repository.appendLesson({
      id: this.dependencies.ids.uuid(),
      courseId,
      ...input,
      createdAt: now,
    });
    if (!lesson) throw new NotFoundError('Course');
    return this.lessonView(lesson, true, true);
  }

  /** Everyone sees the titles, durations and free previews of a visible course; the content is for the enrolled (and admins). */
  async listLessons(courseId: string, viewer: Viewer): Promise<LessonView[]> {
    const course = await this.repository.findCourse(courseId, { publishedOnly: !viewer.admin });
    if (!course) throw new NotFoundError('Course');
    const enrolled = viewer.admin || (viewer.userId !== null && (await this.isEnrolled(viewer.userId, courseId)));
    return this.lessonViews(await this.repository.lessonsOf(courseId), (lesson) => enrolled || lesson.freePreview, viewer.admin);
  }

  async updateLesson(id: string, update: LessonUpdate): Promise<LessonView> {
    const lesson = await this.repository.updateLesson(
      id,
      Object.fromEntries(Object.entries(update).filter(([, value]) => value !== undefined)),
      this.dependencies.clock.now(),
    );
    if (!lesson) throw new NotFoundError('Lesson');
    return this.lessonView(lesson, true, true);
  }

  /** Deletes a lesson; its files (video, renditions, poster, attachments) go in the background. */
  async deleteLesson(id: string): Promise<void> {
    const deleted = await this.repository.deleteLesson(id);
    if (!deleted) throw new NotFoundError('Lesson');
    const prefixes = [`videos/courses/${deleted.courseId}/${id}/`, `attachments/courses/${deleted.courseId}/${id}/`, `thumbnails/lessons/${id}/`];
    await this.dependencies.jobs
      .enqueue(DELETE_FILES_JOB, { prefixes })
      .catch((error: unknown) => this.dependencies.logger.error({ err: error, lessonId: id, prefixes }, "could not queue the deletion of a lesson's files"));
  }

  async reorderLessons(courseId: string, lessonIds: readonly string[]): Promise<LessonView[]> {
    if (!(await this.repository.findCourse(courseId, { publishedOnly: false }))) throw new NotFoundError('Course');
    if (!(await this.repository.reorderLessons(courseId, lessonIds, this.dependencies.clock.now()))) {
      throw new ValidationError('lessonIds must list every lesson of the course once', {
        fields: [{ in: 'body', path: 'lessonIds', message: 'not exactly the lessons of this course' }],
      });
    }
    return this.lessonViews(await this.repository.lessonsOf(courseId), () => true, true);
  }

  // --- progress

  async findLesson(id: string): Promise<LessonRecord | null> {
    return this.repository.findLesson(id);
  }

  /**
   * Why the viewer may watch a lesson: an admin, enrolled in its course, or a free preview of a
   * published course (for anyone). Otherwise 401 for the anonymous, 403 not_enrolled for the rest.
   */
  async lessonGrant(lessonId: string, viewer: Viewer): Promise<{ lesson: LessonRecord; grant: LessonGrant }> {
    const lesson = await this.repository.findLesson(lessonId);
    if (!lesson) throw new NotFoundError('Lesson');
    if (viewer.admin) return { lesson, grant: 'admin' };
    if (viewer.userId && (await this.isEnrolled(viewer.userId, lesson.courseId))) return { lesson, grant: 'enrolled' };
    if (await this.grantHolds(lesson, 'preview', null)) return { lesson, grant: 'preview' };
    if (!viewer.userId) throw new AppError('unauthorized', 'Sign in and enroll in this course to study this lesson');
    throw new AppError('not_enrolled', 'Enroll in this course to study this lesson');
  }

  /** Whether a grant given earlier still holds: a refund ends an enrollment, an unpublished course ends its previews. */
  async grantHolds(lesson: Pick<LessonRecord, 'courseId' | 'freePreview'>, grant: LessonGrant, userId: string | null): Promise<boolean> {
    if (grant === 'admin') return true;
    if (grant === 'enrolled') return userId !== null && this.isEnrolled(userId, lesson.courseId);
    return lesson.freePreview && (await this.repository.findCourse(lesson.courseId, { publishedOnly: true })) !== null;
  }

  /** A lesson the user may study: enrolled in its course, or a free preview of a published one. */
  private async studiable(userId: string, lessonId: string): Promise<LessonRecord> {
    return (await this.lessonGrant(lessonId, { userId, admin: false })).lesson;
  }

  /** Records how far the player got: only ever grows, never past the lesson's duration (when known). */
  async recordWatch(userId: string, lessonId: string, watchSeconds: number): Promise<{ lessonId: string; watchSeconds: number; completed: boolean }> {
    const lesson = await this.studiable(userId, lessonId);
    const bounded = lesson.durationSeconds > 0 ? Math.min(watchSeconds, lesson.durationSeconds) : watchSeconds;
    const progress = await this.repository.recordWatch(userId, lessonId, bounded, this.dependencies.clock.now());
    return { lessonId, watchSeconds: progress.watchSeconds, completed: progress.completedAt !== null };
  }

  /** Completes a lesson; completing the last one of the course tells the student (an `achievement`, once). */
  async completeLesson(userId: string, lessonId: string): Promise<CourseProgressView> {
    const lesson = await this.studiable(userId, lessonId);
    await this.repository.completeLesson(userId, lessonId, this.dependencies.clock.now());
    const progress = await this.progress(userId, lesson.courseId);
    if (progress.lessons > 0 && progress.completedLessonIds.length === progress.lessons) {
      const course = await this.repository.findCourse(lesson.courseId, { publishedOnly: false });
      await this.dependencies.events
        .publish('course.completed', { userId, courseId: lesson.courseId, courseTitle: course?.title ?? 'your course' })
        .catch((error: unknown) => this.dependencies.logger.error({ err: error, courseId: lesson.courseId }, 'could not tell that a course was completed'));
    }
    return progress;
  }

  private async progress(userId: string, courseId: string): Promise<CourseProgressView> {
    const [lessons, progress] = await Promise.all([this.repository.lessonsOf(courseId), this.repository.progressIn(userId, courseId)]);
    const byLesson = new Map(progress.map((entry) => [entry.lessonId, entry]));
    const completed = lessons.filter((lesson) => byLesson.get(lesson.id)?.completedAt);
    const next = lessons.find((lesson) => !byLesson.get(lesson.id)?.completedAt);
    return {
      courseId,
      percent: lessons.length ? Math.floor((completed.length * 100) / lessons.length) : 0,
      lessons: lessons.length,
      completedLessonIds: completed.map((lesson) => lesson.id),
      nextLesson: next ? { id: next.id, title: next.title, position: next.position } : null,
      totalWatchSeconds: progress.reduce((sum, entry) => sum + entry.watchSeconds, 0),
    };
  }

  /** The student's progress in a course they are enrolled in. */
  async myProgress(userId: string, courseId: string): Promise<CourseProgressView> {
    if (!(await this.isEnrolled(userId, courseId))) throw new AppError('not_enrolled', 'You are not enrolled in this course');
    return this.progress(userId, courseId);
  }

  /** The courses the student is enrolled in, newest enrollment first, each with its progress. */
  async myCourses(userId: string): Promise<{ items: Array<{ course: CourseView; enrolledAt: Date; progress: CourseProgressView }>; nextCursor: null }> {
    const courses = await this.repository.enrolledCourses(userId);
    const items = await Promise.all(
      courses.map(async ({ enrolledAt, ...course }) => ({ course: await this.view(course), enrolledAt, progress: await this.progress(userId, course.id) })),
    );
    return { items, nextCursor: null };
  }
}
