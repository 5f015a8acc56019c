import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Locks1796177495745 implements MigrationInterface {
  name = 'Locks1796177495745';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "locks" ("name" character varying(200) NOT NULL, "fencing_token" bigint NOT NULL, "acquired_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_a4b0a3c7fe4f1b11418e0a2356e" PRIMARY KEY ("name"))',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE "locks"');
  }
}
