import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Profiles keep the storage key of their avatar (URLs are signed or CDN-based and made when
 * read), and an optional, unique wallet address.
 */
export class ProfileAvatarKeyAndWallet1763784000000 implements MigrationInterface {
  name = 'ProfileAvatarKeyAndWallet1763784000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE profiles RENAME COLUMN avatar_url TO avatar_key');
    await queryRunner.query('ALTER TABLE profiles ADD COLUMN wallet_address varchar(42)');
    await queryRunner.query('ALTER TABLE profiles ADD CONSTRAINT profiles_wallet_address_unique UNIQUE (wallet_address)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE profiles DROP CONSTRAINT profiles_wallet_address_unique');
    await queryRunner.query('ALTER TABLE profiles DROP COLUMN wallet_address');
    await queryRunner.query('ALTER TABLE profiles RENAME COLUMN avatar_key TO avatar_url');
  }
}
