import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';

export const IDEMPOTENCY_STATES = ['in_progress', 'completed'] as const;
export type IdempotencyState = (typeof IDEMPOTENCY_STATES)[number];

/**
 * One Idempotency-Key of one user on one route (`POST /reports`): the request it was first
 * sent with (by hash) and, once that request has answered, its response. Read and written
 * by IdempotencyStore with SQL; the entity describes the table for the schema tools.
 */
@Entity('idempotency_keys')
@Check('idempotency_keys_state_check', `state IN ('in_progress', 'completed')`)
@Index('idempotency_keys_expires_at_idx', ['expiresAt'])
export class IdempotencyKey {
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId!: string;

  /** Method and route pattern, e.g. `POST /reports`. */
  @PrimaryColumn({ type: 'varchar', length: 300 })
  route!: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  key!: string;

  /** SHA-256 (hex) of the canonical JSON of the request's params, query and body. */
  @Column({ name: 'request_hash', type: 'char', length: 64 })
  requestHash!: string;

  @Column({ type: 'varchar', length: 16 })
  state!: IdempotencyState;

  @Column({ name: 'response_status', type: 'smallint', nullable: true })
  responseStatus!: number | null;

  @Column({ name: 'response_headers', type: 'jsonb', nullable: true })
  responseHeaders!: Record<string, string> | null;

  @Column({ name: 'response_body', type: 'bytea', nullable: true })
  responseBody!: Buffer | null;

  /** When the request holding the key began: an in-progress key this old may be taken over. */
  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;
}
