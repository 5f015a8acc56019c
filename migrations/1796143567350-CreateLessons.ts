import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateLessons1796143567350 implements MigrationInterface {
  name = 'CreateLessons1796143567350';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "lessons" ("id" uuid NOT NULL, "course_id" uuid NOT NULL, "title" character varying(200) NOT NULL, "content" text NOT NULL DEFAULT \'\', "position" integer NOT NULL, "duration_seconds" integer NOT NULL DEFAULT \'0\', "free_preview" boolean NOT NULL DEFAULT false, "video_status" character varying(24) NOT NULL DEFAULT \'none\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "lessons_video_status_check" CHECK (video_status IN (\'none\', \'uploaded\', \'transcoding\', \'ready\', \'failed\', \'transcoding_unavailable\')), CONSTRAINT "lessons_duration_check" CHECK (duration_seconds >= 0), CONSTRAINT "PK_9b9a8d455cac672d262d7275730" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "lessons_course_position_idx" ON "lessons"  ("course_id", "position") ');
    await queryRunner.query(
      'CREATE TABLE "lesson_progress" ("user_id" uuid NOT NULL, "lesson_id" uuid NOT NULL, "watch_seconds" integer NOT NULL DEFAULT \'0\', "completed_at" TIMESTAMP WITH TIME ZONE, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_f34e3a227170e0ce674e0afb58a" PRIMARY KEY ("user_id", "lesson_id"))',
    );
    await queryRunner.query('CREATE INDEX "lesson_progress_lesson_id_idx" ON "lesson_progress"  ("lesson_id") ');
    await queryRunner.query(
      'ALTER TABLE "lessons" ADD CONSTRAINT "lessons_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "lesson_progress" ADD CONSTRAINT "lesson_progress_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "lesson_progress" ADD CONSTRAINT "lesson_progress_lesson_id_fkey" FOREIGN KEY ("lesson_id") REFERENCES "lessons"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "lesson_progress" DROP CONSTRAINT "lesson_progress_lesson_id_fkey"');
    await queryRunner.query('ALTER TABLE "lesson_progress" DROP CONSTRAINT "lesson_progress_user_id_fkey"');
    await queryRunner.query('ALTER TABLE "lessons" DROP CONSTRAINT "lessons_course_id_fkey"');
    await queryRunner.query('DROP INDEX "public"."lesson_progress_lesson_id_idx"');
    await queryRunner.query('DROP TABLE "lesson_progress"');
    await queryRunner.query('DROP INDEX "public"."lessons_course_position_idx"');
    await queryRunner.query('DROP TABLE "lessons"');
  }
}
