import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The first response to each Idempotency-Key, per user and route, kept 24 h. No foreign key:
 * the HTTP layer owns this table, and a deleted user's keys simply expire.
 */
export class CreateIdempotencyKeys1764800000000 implements MigrationInterface {
  name = 'CreateIdempotencyKeys1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE idempotency_keys (
        user_id uuid NOT NULL,
        route varchar(300) NOT NULL,
        key varchar(255) NOT NULL,
        request_hash char(64) NOT NULL,
        state varchar(16) NOT NULL CHECK (state IN ('in_progress', 'completed')),
        response_status smallint,
        response_headers jsonb,
        response_body bytea,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, route, key)
      )`);
    await queryRunner.query('CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE idempotency_keys');
  }
}
