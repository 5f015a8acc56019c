import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';

export const COURSE_LEVELS = ['beginner', 'intermediate', 'advanced'] as const;
export type CourseLevel = (typeof COURSE_LEVELS)[number];

@Entity('courses')
@Check('courses_level_check', `level IN ('beginner', 'intermediate', 'advanced')`)
@Check('courses_price_check', `price_minor >= 0`)
@Check('courses_currency_check', `currency ~ '^[a-z]{3}$'`)
@Index('courses_catalogue_idx', ['published', 'createdAt', 'id'], { where: 'deleted_at IS NULL' })
export class Course {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'text', default: '' })
  description!: string;

  @Column({ type: 'varchar', length: 16 })
  level!: CourseLevel;

  /** Integer minor units of `currency`; 0 is a free course. */
  @Column({ name: 'price_minor', type: 'integer' })
  priceMinor!: number;

  /** ISO 4217, lower case. */
  @Column({ type: 'char', length: 3 })
  currency!: string;

  @Column({ type: 'boolean', default: false })
  published!: boolean;

  /** Its 16:9 WebP under thumbnails/courses/{courseId}/ (public). */
  @Column({ name: 'thumbnail_key', type: 'varchar', length: 300, nullable: true })
  thumbnailKey!: string | null;

  @Index('courses_created_by_idx')
  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'created_by', foreignKeyConstraintName: 'courses_created_by_fkey' })
  creator?: unknown;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  /** Soft delete: hidden from the catalogue, kept for the orders and enrollments that name it. */
  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt!: Date | null;
}

/** A user's access to a course: free, or bought by `order_id`. A full refund revokes it. */
@Entity('enrollments')
@Unique('enrollments_user_course_unique', ['userId', 'courseId'])
export class Enrollment {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'enrollments_user_id_fkey' })
  user?: unknown;

  @Index('enrollments_course_id_idx')
  @Column({ name: 'course_id', type: 'uuid' })
  courseId!: string;

  @ManyToOne('Course', { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'course_id', foreignKeyConstraintName: 'enrollments_course_id_fkey' })
  course?: unknown;

  /** The payments module's order that paid for it; null for a free course. */
  @Index('enrollments_order_id_idx')
  @Column({ name: 'order_id', type: 'uuid', nullable: true })
  orderId!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;
}

export const VIDEO_STATUSES = ['none', 'uploaded', 'transcoding', 'ready', 'failed', 'transcoding_unavailable'] as const;
export type VideoStatus = (typeof VIDEO_STATUSES)[number];

/** One lesson of a course, in the course's order (`position`, from 1). */
@Entity('lessons')
@Check('lessons_duration_check', `duration_seconds >= 0`)
@Check('lessons_video_status_check', `video_status IN ('none', 'uploaded', 'transcoding', 'ready', 'failed', 'transcoding_unavailable')`)
@Index('lessons_course_position_idx', ['courseId', 'position'])
export class Lesson {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'course_id', type: 'uuid' })
  courseId!: string;

  @ManyToOne('Course', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'course_id', foreignKeyConstraintName: 'lessons_course_id_fkey' })
  course?: unknown;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  /** The lesson's text (Markdown): only for the enrolled, unless it is a free preview. */
  @Column({ type: 'text', default: '' })
  content!: string;

  @Column({ type: 'integer' })
  position!: number;

  @Column({ name: 'duration_seconds', type: 'integer', default: 0 })
  durationSeconds!: number;

  @Column({ name: 'free_preview', type: 'boolean', default: false })
  freePreview!: boolean;

  @Column({ name: 'video_status', type: 'varchar', length: 24, default: 'none' })
  videoStatus!: VideoStatus;

  /** The upload the video columns describe: a new upload replaces it, and the jobs of an older one stop. */
  @Column({ name: 'video_upload_id', type: 'uuid', nullable: true })
  videoUploadId!: string | null;

  /** The uploaded file, videos/courses/{courseId}/{lessonId}/original.<ext> (private). */
  @Column({ name: 'video_source_key', type: 'varchar', length: 300, nullable: true })
  videoSourceKey!: string | null;

  /** The admin who uploaded it: told when it is ready. */
  @Column({ name: 'video_uploaded_by', type: 'uuid', nullable: true })
  videoUploadedBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'video_uploaded_by', foreignKeyConstraintName: 'lessons_video_uploaded_by_fkey' })
  videoUploader?: unknown;

  /** The transcoding job, as the job queue names it (`GET /admin/jobs/:id`). */
  @Column({ name: 'video_job_id', type: 'varchar', length: 200, nullable: true })
  videoJobId!: string | null;

  /** Transcoding progress, 0-100. */
  @Column({ name: 'video_progress', type: 'smallint', default: 0 })
  videoProgress!: number;

  /** Why the video failed, for the admin. */
  @Column({ name: 'video_error', type: 'text', nullable: true })
  videoError!: string | null;

  /** The renditions' heights, highest first (e.g. {720,480,360}). */
  @Column({ name: 'video_heights', type: 'smallint', array: true, nullable: true })
  videoHeights!: number[] | null;

  /** The poster frame, a 16:9 WebP under thumbnails/lessons/{lessonId}/ (public). */
  @Column({ name: 'thumbnail_key', type: 'varchar', length: 300, nullable: true })
  thumbnailKey!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** How far one user is in one lesson: watch time only grows; completed once. */
@Entity('lesson_progress')
export class LessonProgress {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'lesson_progress_user_id_fkey' })
  user?: unknown;

  @Index('lesson_progress_lesson_id_idx')
  @PrimaryColumn({ name: 'lesson_id', type: 'uuid' })
  lessonId!: string;

  @ManyToOne('Lesson', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'lesson_id', foreignKeyConstraintName: 'lesson_progress_lesson_id_fkey' })
  lesson?: unknown;

  @Column({ name: 'watch_seconds', type: 'integer', default: 0 })
  watchSeconds!: number;

  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true })
  completedAt!: Date | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** A document (PDF) attached to a lesson, private like its video. */
@Entity('lesson_attachments')
@Check('lesson_attachments_size_check', `size_bytes >= 0`)
export class LessonAttachment {
  @PrimaryColumn('uuid')
  id!: string;

  @Index('lesson_attachments_lesson_id_idx')
  @Column({ name: 'lesson_id', type: 'uuid' })
  lessonId!: string;

  @ManyToOne('Lesson', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'lesson_id', foreignKeyConstraintName: 'lesson_attachments_lesson_id_fkey' })
  lesson?: unknown;

  /** As uploaded, for the download's name. */
  @Column({ name: 'file_name', type: 'varchar', length: 255 })
  fileName!: string;

  @Column({ name: 'size_bytes', type: 'integer' })
  sizeBytes!: number;

  /** attachments/courses/{courseId}/{lessonId}/{id}.pdf */
  @Column({ name: 'storage_key', type: 'varchar', length: 300 })
  storageKey!: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
