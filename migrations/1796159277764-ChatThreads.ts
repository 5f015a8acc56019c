import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ChatThreads1796159277764 implements MigrationInterface {
  name = 'ChatThreads1796159277764';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "chat_threads" ("id" uuid NOT NULL, "user_id" uuid, "anonymous_key" character varying(64), "title" character varying(200) NOT NULL, "model" character varying(200) NOT NULL, "topic" character varying(200), "message_count" integer NOT NULL DEFAULT \'0\', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "chat_threads_owner_check" CHECK ((user_id IS NULL) <> (anonymous_key IS NULL)), CONSTRAINT "PK_973a81c0adb9b18a5ea3ef95bf8" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "chat_threads_anonymous_idx" ON "chat_threads"  ("anonymous_key", "updated_at") ');
    await queryRunner.query('CREATE INDEX "chat_threads_user_idx" ON "chat_threads"  ("user_id", "updated_at", "id") ');
    await queryRunner.query('CREATE TYPE "public"."chat_message_role" AS ENUM(\'user\', \'assistant\')');
    await queryRunner.query("CREATE TYPE \"public\".\"chat_message_status\" AS ENUM('complete', 'streaming', 'interrupted', 'failed')");
    await queryRunner.query(
      'CREATE TABLE "chat_messages" ("id" uuid NOT NULL, "thread_id" uuid NOT NULL, "role" "public"."chat_message_role" NOT NULL, "content" text NOT NULL, "status" "public"."chat_message_status" NOT NULL DEFAULT \'complete\', "model" character varying(200), "prompt_tokens" integer, "reply_tokens" integer, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_40c55ee0e571e268b0d3cd37d10" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "chat_messages_streaming_idx" ON "chat_messages"  ("created_at") WHERE status = \'streaming\'');
    await queryRunner.query('CREATE INDEX "chat_messages_thread_idx" ON "chat_messages"  ("thread_id", "created_at", "id") ');
    await queryRunner.query(
      'ALTER TABLE "chat_threads" ADD CONSTRAINT "chat_threads_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
    await queryRunner.query(
      'ALTER TABLE "chat_messages" ADD CONSTRAINT "chat_messages_thread_id_fkey" FOREIGN KEY ("thread_id") REFERENCES "chat_threads"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "chat_messages" DROP CONSTRAINT "chat_messages_thread_id_fkey"');
    await queryRunner.query('ALTER TABLE "chat_threads" DROP CONSTRAINT "chat_threads_user_id_fkey"');
    await queryRunner.query('DROP INDEX "public"."chat_messages_thread_idx"');
    await queryRunner.query('DROP INDEX "public"."chat_messages_streaming_idx"');
    await queryRunner.query('DROP TABLE "chat_messages"');
    await queryRunner.query('DROP TYPE "public"."chat_message_status"');
    await queryRunner.query('DROP TYPE "public"."chat_message_role"');
    await queryRunner.query('DROP INDEX "public"."chat_threads_user_idx"');
    await queryRunner.query('DROP INDEX "public"."chat_threads_anonymous_idx"');
    await queryRunner.query('DROP TABLE "chat_threads"');
  }
}
