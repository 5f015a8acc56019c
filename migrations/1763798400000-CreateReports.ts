import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Safety reports between users, and the time a user was flagged for review. */
export class CreateReports1763798400000 implements MigrationInterface {
  name = 'CreateReports1763798400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE users ADD COLUMN flagged_at timestamptz');
    await queryRunner.query(`
      CREATE TABLE reports (
        id uuid PRIMARY KEY,
        reporter_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        reported_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        session_id uuid REFERENCES call_sessions(id) ON DELETE SET NULL,
        reason varchar(16) NOT NULL CHECK (reason IN ('harassment', 'spam', 'inappropriate', 'hate_speech', 'other')),
        description text,
        status varchar(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'reviewed', 'actioned', 'dismissed')),
        admin_note text,
        reviewed_by uuid REFERENCES users(id) ON DELETE SET NULL,
        actioned_at timestamptz,
        created_at timestamptz NOT NULL,
        CONSTRAINT reports_session_reporter_unique UNIQUE (session_id, reporter_id)
      )`);
    await queryRunner.query('CREATE INDEX reports_reporter_id_idx ON reports (reporter_id, created_at DESC)');
    await queryRunner.query('CREATE INDEX reports_reported_id_status_idx ON reports (reported_id, status)');
    await queryRunner.query('CREATE INDEX reports_session_id_idx ON reports (session_id)');
    await queryRunner.query('CREATE INDEX reports_reviewed_by_idx ON reports (reviewed_by)');
    await queryRunner.query('CREATE INDEX reports_status_created_at_idx ON reports (status, created_at DESC)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE reports');
    await queryRunner.query('ALTER TABLE users DROP COLUMN flagged_at');
  }
}
