import type { MigrationInterface, QueryRunner } from 'typeorm';

export class OllamaKeys1796151093444 implements MigrationInterface {
  name = 'OllamaKeys1796151093444';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "ollama_keys" ("user_id" uuid NOT NULL, "encrypted_key" bytea NOT NULL, "nonce" bytea NOT NULL, "key_version" character varying(16) NOT NULL, "key_hint" character varying(8) NOT NULL, "base_url" character varying(500), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_fb8aaa427c483180005eb9663f5" PRIMARY KEY ("user_id"))',
    );
    await queryRunner.query('CREATE INDEX "ollama_keys_key_version_idx" ON "ollama_keys"  ("key_version") ');
    await queryRunner.query(
      'ALTER TABLE "ollama_keys" ADD CONSTRAINT "ollama_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "ollama_keys" DROP CONSTRAINT "ollama_keys_user_id_fkey"');
    await queryRunner.query('DROP INDEX "public"."ollama_keys_key_version_idx"');
    await queryRunner.query('DROP TABLE "ollama_keys"');
  }
}
