import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreatePayments1796139015198 implements MigrationInterface {
  name = 'CreatePayments1796139015198';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "courses" ("id" uuid NOT NULL, "title" character varying(200) NOT NULL, "description" text NOT NULL DEFAULT \'\', "level" character varying(16) NOT NULL, "price_minor" integer NOT NULL, "currency" character(3) NOT NULL, "published" boolean NOT NULL DEFAULT false, "created_by" uuid, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, "deleted_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "courses_currency_check" CHECK (currency ~ \'^[a-z]{3}$\'), CONSTRAINT "courses_price_check" CHECK (price_minor >= 0), CONSTRAINT "courses_level_check" CHECK (level IN (\'beginner\', \'intermediate\', \'advanced\')), CONSTRAINT "PK_3f70a487cc718ad8eda4e6d58c9" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "courses_created_by_idx" ON "courses"  ("created_by") ');
    await queryRunner.query('CREATE INDEX "courses_catalogue_idx" ON "courses"  ("published", "created_at", "id") WHERE deleted_at IS NULL');
    await queryRunner.query(
      'CREATE TABLE "enrollments" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "course_id" uuid NOT NULL, "order_id" uuid, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "enrollments_user_course_unique" UNIQUE ("user_id", "course_id"), CONSTRAINT "PK_7c0f752f9fb68bf6ed7367ab00f" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "enrollments_course_id_idx" ON "enrollments"  ("course_id") ');
    await queryRunner.query('CREATE INDEX "enrollments_order_id_idx" ON "enrollments"  ("order_id") ');
    await queryRunner.query(
      'CREATE TABLE "orders" ("id" uuid NOT NULL, "receipt_id" character varying(32) NOT NULL, "user_id" uuid NOT NULL, "kind" character varying(16) NOT NULL, "course_id" uuid, "description" character varying(200) NOT NULL, "provider" character varying(16) NOT NULL, "provider_session_id" character varying(255), "provider_payment_id" character varying(255), "checkout_url" text, "amount_minor" integer NOT NULL, "currency" character(3) NOT NULL, "status" character varying(24) NOT NULL DEFAULT \'pending\', "refunded_minor" integer NOT NULL DEFAULT \'0\', "paid_at" TIMESTAMP WITH TIME ZONE, "expired_at" TIMESTAMP WITH TIME ZONE, "failed_at" TIMESTAMP WITH TIME ZONE, "failure_reason" character varying(200), "disputed_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "UQ_e98c33c085d1cbeca2a551b15d2" UNIQUE ("receipt_id"), CONSTRAINT "orders_provider_session_unique" UNIQUE ("provider", "provider_session_id"), CONSTRAINT "orders_amounts_check" CHECK (amount_minor > 0 AND refunded_minor >= 0 AND refunded_minor <= amount_minor), CONSTRAINT "orders_kind_check" CHECK (kind IN (\'course\', \'donation\') AND (kind <> \'course\' OR course_id IS NOT NULL)), CONSTRAINT "orders_status_check" CHECK (status IN (\'pending\', \'paid\', \'failed\', \'expired\', \'refunded\', \'partially_refunded\', \'disputed\')), CONSTRAINT "PK_710e2d4957aa5878dfe94e4ac2f" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "orders_course_id_idx" ON "orders"  ("course_id") ');
    await queryRunner.query(
      'CREATE UNIQUE INDEX "orders_one_pending_checkout_idx" ON "orders"  ("user_id", "course_id") WHERE status = \'pending\' AND kind = \'course\'',
    );
    await queryRunner.query('CREATE INDEX "orders_provider_payment_idx" ON "orders"  ("provider", "provider_payment_id") ');
    await queryRunner.query('CREATE INDEX "orders_status_created_idx" ON "orders"  ("status", "created_at", "id") ');
    await queryRunner.query('CREATE INDEX "orders_user_created_idx" ON "orders"  ("user_id", "created_at", "id") ');
    await queryRunner.query(
      'CREATE TABLE "order_refunds" ("id" uuid NOT NULL, "order_id" uuid NOT NULL, "provider" character varying(16) NOT NULL, "provider_refund_id" character varying(255), "amount_minor" integer NOT NULL, "status" character varying(16) NOT NULL, "requested_by" uuid, "error" character varying(200), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "order_refunds_provider_refund_unique" UNIQUE ("provider", "provider_refund_id"), CONSTRAINT "order_refunds_amount_check" CHECK (amount_minor > 0), CONSTRAINT "order_refunds_status_check" CHECK (status IN (\'requested\', \'submitted\', \'succeeded\', \'failed\')), CONSTRAINT "PK_f8c501d1232e93e00aac466a279" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "order_refunds_order_id_idx" ON "order_refunds"  ("order_id") ');
    await queryRunner.query('CREATE INDEX "order_refunds_requested_by_idx" ON "order_refunds"  ("requested_by") ');
    await queryRunner.query(
      'CREATE TABLE "payment_webhook_events" ("id" uuid NOT NULL, "provider" character varying(16) NOT NULL, "event_id" character varying(255) NOT NULL, "type" character varying(100) NOT NULL, "payload" jsonb NOT NULL, "effect" jsonb NOT NULL, "status" character varying(16) NOT NULL DEFAULT \'received\', "attempts" integer NOT NULL DEFAULT \'0\', "next_attempt_at" TIMESTAMP WITH TIME ZONE NOT NULL, "claimed_until" TIMESTAMP WITH TIME ZONE, "last_error" character varying(500), "order_id" uuid, "notices" jsonb, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL, "applied_at" TIMESTAMP WITH TIME ZONE, "processed_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "payment_webhook_events_provider_event_unique" UNIQUE ("provider", "event_id"), CONSTRAINT "payment_webhook_events_status_check" CHECK (status IN (\'received\', \'processed\', \'failed\')), CONSTRAINT "PK_750875e71d97974be92cee813ba" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "payment_webhook_events_order_id_idx" ON "payment_webhook_events"  ("order_id") ');
    await queryRunner.query('CREATE INDEX "payment_webhook_events_status_idx" ON "payment_webhook_events"  ("status", "received_at", "id") ');
    await queryRunner.query('CREATE INDEX "payment_webhook_events_due_idx" ON "payment_webhook_events"  ("next_attempt_at") WHERE status = \'received\'');
    await queryRunner.query(
      'CREATE TABLE "sponsorships" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "order_id" uuid NOT NULL, "sponsor_type" character varying(40) NOT NULL, "target_identifier" character varying(200) NOT NULL, "amount_minor" integer NOT NULL, "currency" character(3) NOT NULL, "payment_provider" character varying(16) NOT NULL, "payment_provider_order_id" character varying(255), "payment_provider_capture_id" character varying(255), "message" character varying(500), "anonymous" boolean NOT NULL DEFAULT false, "status" character varying(16) NOT NULL DEFAULT \'pending\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "completed_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "UQ_60d0b77581a1796e3317bb2081e" UNIQUE ("order_id"), CONSTRAINT "sponsorships_status_check" CHECK (status IN (\'pending\', \'completed\', \'failed\', \'expired\', \'refunded\')), CONSTRAINT "PK_393571b62d6dd0f63c6d3eb154b" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "sponsorships_user_created_idx" ON "sponsorships"  ("user_id", "created_at") ');
    await queryRunner.query(
      'CREATE TABLE "local_checkout_sessions" ("id" character varying(64) NOT NULL, "order_id" uuid NOT NULL, "description" character varying(200) NOT NULL, "amount_minor" integer NOT NULL, "currency" character(3) NOT NULL, "status" character varying(16) NOT NULL DEFAULT \'open\', "payment_id" character varying(64), "refunded_minor" integer NOT NULL DEFAULT \'0\', "refund_ids" jsonb NOT NULL DEFAULT \'[]\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "UQ_95a9d7ebe3c38330e36a55d4ba3" UNIQUE ("order_id"), CONSTRAINT "UQ_48b2dcc02fa7427eedbce17cb4c" UNIQUE ("payment_id"), CONSTRAINT "local_checkout_sessions_status_check" CHECK (status IN (\'open\', \'completed\', \'cancelled\', \'expired\')), CONSTRAINT "PK_db2901abe624d53cb9d473fed17" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "local_checkout_sessions_open_idx" ON "local_checkout_sessions"  ("expires_at") WHERE status = \'open\'');
    await queryRunner.query(
      'ALTER TABLE "courses" ADD CONSTRAINT "courses_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "enrollments" ADD CONSTRAINT "enrollments_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "enrollments" ADD CONSTRAINT "enrollments_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses"("id") ON DELETE RESTRICT ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "orders" ADD CONSTRAINT "orders_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "orders" ADD CONSTRAINT "orders_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses"("id") ON DELETE RESTRICT ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "order_refunds" ADD CONSTRAINT "order_refunds_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "order_refunds" ADD CONSTRAINT "order_refunds_requested_by_fkey" FOREIGN KEY ("requested_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "payment_webhook_events" ADD CONSTRAINT "payment_webhook_events_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders"("id") ON DELETE SET NULL ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "sponsorships" ADD CONSTRAINT "sponsorships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "sponsorships" ADD CONSTRAINT "sponsorships_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders"("id") ON DELETE RESTRICT ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "local_checkout_sessions" ADD CONSTRAINT "local_checkout_sessions_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "local_checkout_sessions" DROP CONSTRAINT "local_checkout_sessions_order_id_fkey"');
    await queryRunner.query('ALTER TABLE "sponsorships" DROP CONSTRAINT "sponsorships_order_id_fkey"');
    await queryRunner.query('ALTER TABLE "sponsorships" DROP CONSTRAINT "sponsorships_user_id_fkey"');
    await queryRunner.query('ALTER TABLE "payment_webhook_events" DROP CONSTRAINT "payment_webhook_events_order_id_fkey"');
    await queryRunner.query('ALTER TABLE "order_refunds" DROP CONSTRAINT "order_refunds_requested_by_fkey"');
    await queryRunner.query('ALTER TABLE "order_refunds" DROP CONSTRAINT "order_refunds_order_id_fkey"');
    await queryRunner.query('ALTER TABLE "orders" DROP CONSTRAINT "orders_course_id_fkey"');
    await queryRunner.query('ALTER TABLE "orders" DROP CONSTRAINT "orders_user_id_fkey"');
    await queryRunner.query('ALTER TABLE "enrollments" DROP CONSTRAINT "enrollments_course_id_fkey"');
    await queryRunner.query('ALTER TABLE "enrollments" DROP CONSTRAINT "enrollments_user_id_fkey"');
    await queryRunner.query('ALTER TABLE "courses" DROP CONSTRAINT "courses_created_by_fkey"');
    await queryRunner.query('DROP INDEX "public"."local_checkout_sessions_open_idx"');
    await queryRunner.query('DROP TABLE "local_checkout_sessions"');
    await queryRunner.query('DROP INDEX "public"."sponsorships_user_created_idx"');
    await queryRunner.query('DROP TABLE "sponsorships"');
    await queryRunner.query('DROP INDEX "public"."payment_webhook_events_due_idx"');
    await queryRunner.query('DROP INDEX "public"."payment_webhook_events_status_idx"');
    await queryRunner.query('DROP INDEX "public"."payment_webhook_events_order_id_idx"');
    await queryRunner.query('DROP TABLE "payment_webhook_events"');
    await queryRunner.query('DROP INDEX "public"."order_refunds_requested_by_idx"');
    await queryRunner.query('DROP INDEX "public"."order_refunds_order_id_idx"');
    await queryRunner.query('DROP TABLE "order_refunds"');
    await queryRunner.query('DROP INDEX "public"."orders_user_created_idx"');
    await queryRunner.query('DROP INDEX "public"."orders_status_created_idx"');
    await queryRunner.query('DROP INDEX "public"."orders_provider_payment_idx"');
    await queryRunner.query('DROP INDEX "public"."orders_one_pending_checkout_idx"');
    await queryRunner.query('DROP INDEX "public"."orders_course_id_idx"');
    await queryRunner.query('DROP TABLE "orders"');
    await queryRunner.query('DROP INDEX "public"."enrollments_order_id_idx"');
    await queryRunner.query('DROP INDEX "public"."enrollments_course_id_idx"');
    await queryRunner.query('DROP TABLE "enrollments"');
    await queryRunner.query('DROP INDEX "public"."courses_catalogue_idx"');
    await queryRunner.query('DROP INDEX "public"."courses_created_by_idx"');
    await queryRunner.query('DROP TABLE "courses"');
  }
}
