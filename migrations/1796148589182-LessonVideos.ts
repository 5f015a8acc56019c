import type { MigrationInterface, QueryRunner } from 'typeorm';

export class LessonVideos1796148589182 implements MigrationInterface {
  name = 'LessonVideos1796148589182';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "lesson_attachments" ("id" uuid NOT NULL, "lesson_id" uuid NOT NULL, "file_name" character varying(255) NOT NULL, "size_bytes" integer NOT NULL, "storage_key" character varying(300) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "lesson_attachments_size_check" CHECK (size_bytes >= 0), CONSTRAINT "PK_37484909e3479efdd8bf36c7690" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "lesson_attachments_lesson_id_idx" ON "lesson_attachments"  ("lesson_id") ');
    await queryRunner.query('ALTER TABLE "courses" ADD "thumbnail_key" character varying(300)');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_upload_id" uuid');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_source_key" character varying(300)');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_uploaded_by" uuid');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_job_id" character varying(200)');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_progress" smallint NOT NULL DEFAULT \'0\'');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_error" text');
    await queryRunner.query('ALTER TABLE "lessons" ADD "video_heights" smallint array');
    await queryRunner.query('ALTER TABLE "lessons" ADD "thumbnail_key" character varying(300)');
    await queryRunner.query(
      'ALTER TABLE "lessons" ADD CONSTRAINT "lessons_video_uploaded_by_fkey" FOREIGN KEY ("video_uploaded_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "lesson_attachments" ADD CONSTRAINT "lesson_attachments_lesson_id_fkey" FOREIGN KEY ("lesson_id") REFERENCES "lessons"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "lesson_attachments" DROP CONSTRAINT "lesson_attachments_lesson_id_fkey"');
    await queryRunner.query('ALTER TABLE "lessons" DROP CONSTRAINT "lessons_video_uploaded_by_fkey"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "thumbnail_key"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_heights"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_error"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_progress"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_job_id"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_uploaded_by"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_source_key"');
    await queryRunner.query('ALTER TABLE "lessons" DROP COLUMN "video_upload_id"');
    await queryRunner.query('ALTER TABLE "courses" DROP COLUMN "thumbnail_key"');
    await queryRunner.query('DROP INDEX "public"."lesson_attachments_lesson_id_idx"');
    await queryRunner.query('DROP TABLE "lesson_attachments"');
  }
}
