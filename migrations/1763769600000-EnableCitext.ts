import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Case-insensitive text, used for e-mail addresses and usernames. */
export class EnableCitext1763769600000 implements MigrationInterface {
  name = 'EnableCitext1763769600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE EXTENSION IF NOT EXISTS citext');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP EXTENSION IF EXISTS citext');
  }
}
