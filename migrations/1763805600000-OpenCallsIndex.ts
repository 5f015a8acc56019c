import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The calls still running, for the sweep that ends calls past CALL_MAX_DURATION. */
export class OpenCallsIndex1763805600000 implements MigrationInterface {
  name = 'OpenCallsIndex1763805600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE INDEX call_sessions_open_idx ON call_sessions (started_at) WHERE ended_at IS NULL');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX call_sessions_open_idx');
  }
}
