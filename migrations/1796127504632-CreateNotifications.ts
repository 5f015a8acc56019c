import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Device tokens, the inbox, preferences with quiet hours, per-device deliveries, and admin broadcasts (issue 13). */
export class CreateNotifications1796127504632 implements MigrationInterface {
  name = 'CreateNotifications1796127504632';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "device_tokens" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "device_id" character varying(128) NOT NULL, "platform" character varying(8) NOT NULL, "fcm_token" character varying(4096) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "device_tokens_fcm_token_unique" UNIQUE ("fcm_token"), CONSTRAINT "device_tokens_user_device_unique" UNIQUE ("user_id", "device_id"), CONSTRAINT "device_tokens_platform_check" CHECK (platform IN (\'ios\', \'android\', \'web\')), CONSTRAINT "PK_84700be257607cfb1f9dc2e52c3" PRIMARY KEY ("id"))',
    );
    await queryRunner.query(
      'CREATE TABLE "notifications" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "type" character varying(20) NOT NULL, "title" character varying(200) NOT NULL, "body" text NOT NULL, "data" jsonb, "in_app" boolean NOT NULL DEFAULT true, "read" boolean NOT NULL DEFAULT false, "read_at" TIMESTAMP WITH TIME ZONE, "sent_at" TIMESTAMP WITH TIME ZONE, "dedupe_key" character varying(200), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "notifications_type_check" CHECK (type IN (\'match_found\', \'payment_success\', \'system\', \'achievement\', \'report_update\', \'course_ready\')), CONSTRAINT "PK_6a72c3c0f683f6462415e653c3a" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE UNIQUE INDEX "notifications_user_dedupe_key_unique" ON "notifications"  ("user_id", "dedupe_key") ');
    await queryRunner.query('CREATE INDEX "notifications_unread_idx" ON "notifications"  ("user_id") WHERE NOT read');
    await queryRunner.query('CREATE INDEX "notifications_user_created_idx" ON "notifications"  ("user_id", "created_at", "id") ');
    await queryRunner.query(
      'CREATE TABLE "notification_preferences" ("user_id" uuid NOT NULL, "channels" jsonb NOT NULL, "quiet_start" character varying(5), "quiet_end" character varying(5), "time_zone" character varying(64), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_64c90edc7310c6be7c10c96f675" PRIMARY KEY ("user_id"))',
    );
    await queryRunner.query(
      'CREATE TABLE "notification_deliveries" ("id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL, "notification_id" uuid NOT NULL, "channel" character varying(8) NOT NULL, "target" character varying(128) NOT NULL, "status" character varying(8) NOT NULL, "content" jsonb, "not_before" TIMESTAMP WITH TIME ZONE, "claimed_until" TIMESTAMP WITH TIME ZONE, "attempts" smallint NOT NULL DEFAULT \'0\', "error" character varying(120), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "notification_deliveries_target_unique" UNIQUE ("notification_id", "channel", "target"), CONSTRAINT "notification_deliveries_status_check" CHECK (status IN (\'queued\', \'sent\', \'failed\')), CONSTRAINT "notification_deliveries_channel_check" CHECK (channel IN (\'push\', \'email\')), CONSTRAINT "PK_81daeff81f237bd384f7cfc4a4c" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "notification_deliveries_status_idx" ON "notification_deliveries"  ("status", "channel") ');
    await queryRunner.query(
      'CREATE TABLE "notification_broadcasts" ("id" uuid NOT NULL, "title" character varying(200) NOT NULL, "body" text NOT NULL, "audience" jsonb NOT NULL, "created_by" uuid, "job_id" character varying(200), "recipients" integer, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "finished_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_6f7c083e6995cac3a6cd4609125" PRIMARY KEY ("id"))',
    );
    await queryRunner.query(
      'ALTER TABLE "device_tokens" ADD CONSTRAINT "device_tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "notifications" ADD CONSTRAINT "notifications_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "notification_preferences" ADD CONSTRAINT "notification_preferences_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_notification_id_fkey" FOREIGN KEY ("notification_id") REFERENCES "notifications"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "notification_broadcasts" ADD CONSTRAINT "notification_broadcasts_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "notification_broadcasts" DROP CONSTRAINT "notification_broadcasts_created_by_fkey"');
    await queryRunner.query('ALTER TABLE "notification_deliveries" DROP CONSTRAINT "notification_deliveries_notification_id_fkey"');
    await queryRunner.query('ALTER TABLE "notification_preferences" DROP CONSTRAINT "notification_preferences_user_id_fkey"');
    await queryRunner.query('ALTER TABLE "notifications" DROP CONSTRAINT "notifications_user_id_fkey"');
    await queryRunner.query('ALTER TABLE "device_tokens" DROP CONSTRAINT "device_tokens_user_id_fkey"');
    await queryRunner.query('DROP TABLE "notification_broadcasts"');
    await queryRunner.query('DROP INDEX "public"."notification_deliveries_status_idx"');
    await queryRunner.query('DROP TABLE "notification_deliveries"');
    await queryRunner.query('DROP TABLE "notification_preferences"');
    await queryRunner.query('DROP INDEX "public"."notifications_user_created_idx"');
    await queryRunner.query('DROP INDEX "public"."notifications_unread_idx"');
    await queryRunner.query('DROP INDEX "public"."notifications_user_dedupe_key_unique"');
    await queryRunner.query('DROP TABLE "notifications"');
    await queryRunner.query('DROP TABLE "device_tokens"');
  }
}
