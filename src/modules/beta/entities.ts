import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';

/** A private-beta invitation: single use, optionally bound to one e-mail, optionally expiring. */
@Entity('invite_keys')
@Unique('invite_keys_key_unique', ['key'])
export class InviteKey {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 32 })
  key!: string;

  @Column({ type: 'citext', nullable: true })
  email!: string | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;

  @Index('invite_keys_created_by_idx')
  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'created_by', foreignKeyConstraintName: 'invite_keys_created_by_fkey' })
  creator?: unknown;

  @Index('invite_keys_used_by_idx')
  @Column({ name: 'used_by', type: 'uuid', nullable: true })
  usedBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'used_by', foreignKeyConstraintName: 'invite_keys_used_by_fkey' })
  user?: unknown;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
