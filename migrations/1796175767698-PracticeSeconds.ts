import type { MigrationInterface, QueryRunner } from 'typeorm';

export class PracticeSeconds1796175767698 implements MigrationInterface {
  name = 'PracticeSeconds1796175767698';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "profiles" ADD "total_practice_seconds" integer NOT NULL DEFAULT \'0\'');
    // the calls before this were only kept as rounded minutes: their seconds are those minutes'
    await queryRunner.query('UPDATE "profiles" SET "total_practice_seconds" = "total_practice_mins" * 60 WHERE "total_practice_mins" > 0');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "profiles" DROP COLUMN "total_practice_seconds"');
  }
}
