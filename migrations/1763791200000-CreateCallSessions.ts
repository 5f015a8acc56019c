import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Every call between two matched users, and the one rating each participant may give. */
export class CreateCallSessions1763791200000 implements MigrationInterface {
  name = 'CreateCallSessions1763791200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE call_sessions (
        id uuid PRIMARY KEY,
        room_id uuid NOT NULL,
        user_a_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_b_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        topic varchar(80),
        level varchar(16),
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        duration_seconds integer,
        ended_by varchar(8) CHECK (ended_by IN ('user_a', 'user_b', 'timeout', 'error')),
        created_at timestamptz NOT NULL,
        CONSTRAINT call_sessions_room_id_unique UNIQUE (room_id)
      )`);
    await queryRunner.query('CREATE INDEX call_sessions_user_a_id_idx ON call_sessions (user_a_id, started_at DESC)');
    await queryRunner.query('CREATE INDEX call_sessions_user_b_id_idx ON call_sessions (user_b_id, started_at DESC)');
    await queryRunner.query(`
      CREATE TABLE session_ratings (
        id uuid PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES call_sessions(id) ON DELETE CASCADE,
        rater_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        rated_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        stars smallint NOT NULL CHECK (stars BETWEEN 1 AND 5),
        created_at timestamptz NOT NULL,
        CONSTRAINT session_ratings_session_rater_unique UNIQUE (session_id, rater_id)
      )`);
    await queryRunner.query('CREATE INDEX session_ratings_rater_id_idx ON session_ratings (rater_id)');
    await queryRunner.query('CREATE INDEX session_ratings_rated_id_idx ON session_ratings (rated_id)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE session_ratings');
    await queryRunner.query('DROP TABLE call_sessions');
  }
}
