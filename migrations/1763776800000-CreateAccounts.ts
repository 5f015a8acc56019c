import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Accounts (users + profiles), device sessions with their rotating refresh tokens, one-time
 * tokens for password reset and e-mail verification, private-beta invite keys, and the
 * monthly-partitioned activity log.
 */
export class CreateAccounts1763776800000 implements MigrationInterface {
  name = 'CreateAccounts1763776800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY,
        email citext NOT NULL,
        password_hash varchar(100),
        role varchar(16) NOT NULL DEFAULT 'student' CHECK (role IN ('student', 'admin')),
        is_verified boolean NOT NULL DEFAULT false,
        is_banned boolean NOT NULL DEFAULT false,
        ban_reason text,
        banned_at timestamptz,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        CONSTRAINT users_email_unique UNIQUE (email)
      )`);
    await queryRunner.query(`
      CREATE TABLE profiles (
        user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        username citext,
        display_name varchar(80),
        avatar_url text,
        bio text,
        native_language varchar(40),
        english_level varchar(16) CHECK (english_level IN ('beginner', 'intermediate', 'advanced')),
        learning_goal varchar(16) CHECK (learning_goal IN ('fluency', 'business', 'travel', 'exam')),
        country varchar(2),
        timezone varchar(64),
        total_practice_mins integer NOT NULL DEFAULT 0,
        total_sessions integer NOT NULL DEFAULT 0,
        streak_days integer NOT NULL DEFAULT 0,
        last_session_at timestamptz,
        last_active_at timestamptz,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT profiles_username_unique UNIQUE (username)
      )`);
    await queryRunner.query(`
      CREATE TABLE device_sessions (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device_id varchar(128) NOT NULL,
        platform varchar(8) NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
        user_agent varchar(512),
        ip varchar(64),
        push_token text,
        created_at timestamptz NOT NULL,
        last_used_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoke_reason varchar(32)
      )`);
    await queryRunner.query('CREATE INDEX device_sessions_user_id_idx ON device_sessions (user_id)');
    await queryRunner.query(`
      CREATE TABLE refresh_tokens (
        id uuid PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES device_sessions(id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_hash char(64) NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked boolean NOT NULL DEFAULT false,
        revoked_at timestamptz,
        replaced_by uuid,
        created_at timestamptz NOT NULL,
        CONSTRAINT refresh_tokens_token_hash_unique UNIQUE (token_hash)
      )`);
    await queryRunner.query('CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id)');
    await queryRunner.query('CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id)');
    for (const table of ['password_reset_tokens', 'email_verification_tokens']) {
      await queryRunner.query(`
        CREATE TABLE ${table} (
          id uuid PRIMARY KEY,
          user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
          token_hash char(64) NOT NULL,
          expires_at timestamptz NOT NULL,
          used boolean NOT NULL DEFAULT false,
          used_at timestamptz,
          created_at timestamptz NOT NULL,
          CONSTRAINT ${table}_token_hash_unique UNIQUE (token_hash)
        )`);
      await queryRunner.query(`CREATE INDEX ${table}_user_id_idx ON ${table} (user_id)`);
    }
    await queryRunner.query(`
      CREATE TABLE invite_keys (
        id uuid PRIMARY KEY,
        key varchar(32) NOT NULL,
        email citext,
        expires_at timestamptz,
        created_by uuid REFERENCES users(id) ON DELETE SET NULL,
        used_by uuid REFERENCES users(id) ON DELETE SET NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL,
        CONSTRAINT invite_keys_key_unique UNIQUE (key)
      )`);
    await queryRunner.query('CREATE INDEX invite_keys_created_by_idx ON invite_keys (created_by)');
    await queryRunner.query('CREATE INDEX invite_keys_used_by_idx ON invite_keys (used_by)');
    // Monthly partitions are created ahead by the audit module at start and daily.
    await queryRunner.query(`
      CREATE TABLE activity_logs (
        id uuid NOT NULL,
        user_id uuid REFERENCES users(id) ON DELETE SET NULL,
        actor_id uuid REFERENCES users(id) ON DELETE SET NULL,
        type varchar(64) NOT NULL,
        ip varchar(64),
        user_agent varchar(512),
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL,
        PRIMARY KEY (id, created_at)
      ) PARTITION BY RANGE (created_at)`);
    await queryRunner.query('CREATE INDEX activity_logs_user_id_created_at_idx ON activity_logs (user_id, created_at DESC)');
    await queryRunner.query('CREATE INDEX activity_logs_actor_id_idx ON activity_logs (actor_id)');
    await queryRunner.query('CREATE INDEX activity_logs_type_created_at_idx ON activity_logs (type, created_at DESC)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'activity_logs',
      'invite_keys',
      'email_verification_tokens',
      'password_reset_tokens',
      'refresh_tokens',
      'device_sessions',
      'profiles',
      'users',
    ]) {
      await queryRunner.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
    }
  }
}
