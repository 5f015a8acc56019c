import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ExternalIdentities1796162342481 implements MigrationInterface {
  name = 'ExternalIdentities1796162342481';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "external_identities" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "issuer" character varying(255) NOT NULL, "subject" character varying(255) NOT NULL, "email" citext, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "external_identities_issuer_subject_unique" UNIQUE ("issuer", "subject"), CONSTRAINT "PK_85d174f9b82602686b4b3846fc4" PRIMARY KEY ("id"))',
    );
    await queryRunner.query('CREATE INDEX "external_identities_user_id_idx" ON "external_identities"  ("user_id") ');
    await queryRunner.query(
      'ALTER TABLE "external_identities" ADD CONSTRAINT "external_identities_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "external_identities" DROP CONSTRAINT "external_identities_user_id_fkey"');
    await queryRunner.query('DROP INDEX "public"."external_identities_user_id_idx"');
    await queryRunner.query('DROP TABLE "external_identities"');
  }
}
