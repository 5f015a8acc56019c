import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';

/** A user's Ollama API key, sealed with AES-256-GCM (the user id as associated data). One per user. */
@Entity('ollama_keys')
export class OllamaKey {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'ollama_keys_user_id_fkey' })
  user?: unknown;

  /** The ciphertext with its 16-byte GCM tag appended. */
  @Column({ name: 'encrypted_key', type: 'bytea' })
  encryptedKey!: Buffer;

  /** 96 random bits, new for every write. */
  @Column({ type: 'bytea' })
  nonce!: Buffer;

  /** Which encryption key sealed it (see SecretBox): a rotation re-seals the rows of older versions. */
  @Index('ollama_keys_key_version_idx')
  @Column({ name: 'key_version', type: 'varchar', length: 16 })
  keyVersion!: string;

  /** The key's last characters, to show it masked without decrypting it; empty for short keys. */
  @Column({ name: 'key_hint', type: 'varchar', length: 8 })
  keyHint!: string;

  /** The user's own Ollama server; null: the server's OLLAMA_BASE_URL. */
  @Column({ name: 'base_url', type: 'varchar', length: 500, nullable: true })
  baseUrl!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
