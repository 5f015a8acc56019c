import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CookieSessions1796172539769 implements MigrationInterface {
  name = 'CookieSessions1796172539769';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "cookie_sessions" ("session_id" uuid NOT NULL, "token_hash" character(64) NOT NULL, "ends_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "cookie_sessions_token_hash_unique" UNIQUE ("token_hash"), CONSTRAINT "PK_f1721cd41d3f3923f757ad84e0c" PRIMARY KEY ("session_id"))',
    );
    await queryRunner.query(
      'ALTER TABLE "cookie_sessions" ADD CONSTRAINT "cookie_sessions_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "device_sessions"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "cookie_sessions" DROP CONSTRAINT "cookie_sessions_session_id_fkey"');
    await queryRunner.query('DROP TABLE "cookie_sessions"');
  }
}
