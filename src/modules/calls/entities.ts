import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';

export const ENDED_BY = ['user_a', 'user_b', 'timeout', 'error'] as const;
export type EndedBy = (typeof ENDED_BY)[number];

@Entity('call_sessions')
@Unique('call_sessions_room_id_unique', ['roomId'])
@Check('call_sessions_ended_by_check', `ended_by IN ('user_a', 'user_b', 'timeout', 'error')`)
@Index('call_sessions_user_a_id_idx', ['userAId', 'startedAt'])
@Index('call_sessions_user_b_id_idx', ['userBId', 'startedAt'])
@Index('call_sessions_open_idx', ['startedAt'], { where: 'ended_at IS NULL' })
export class Call {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'room_id', type: 'uuid' })
  roomId!: string;

  @Column({ name: 'user_a_id', type: 'uuid' })
  userAId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_a_id', foreignKeyConstraintName: 'call_sessions_user_a_id_fkey' })
  userA?: unknown;

  @Column({ name: 'user_b_id', type: 'uuid' })
  userBId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_b_id', foreignKeyConstraintName: 'call_sessions_user_b_id_fkey' })
  userB?: unknown;

  @Column({ type: 'varchar', length: 80, nullable: true })
  topic!: string | null;

  @Column({ type: 'varchar', length: 16, nullable: true })
  level!: string | null;

  @Column({ name: 'started_at', type: 'timestamptz' })
  startedAt!: Date;

  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true })
  endedAt!: Date | null;

  @Column({ name: 'duration_seconds', type: 'integer', nullable: true })
  durationSeconds!: number | null;

  @Column({ name: 'ended_by', type: 'varchar', length: 8, nullable: true })
  endedBy!: EndedBy | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

@Entity('session_ratings')
@Unique('session_ratings_session_rater_unique', ['sessionId', 'raterId'])
@Check('session_ratings_stars_check', `stars BETWEEN 1 AND 5`)
export class CallRating {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'session_id', type: 'uuid' })
  sessionId!: string;

  @ManyToOne('Call', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'session_ratings_session_id_fkey' })
  session?: unknown;

  @Index('session_ratings_rater_id_idx')
  @Column({ name: 'rater_id', type: 'uuid' })
  raterId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'rater_id', foreignKeyConstraintName: 'session_ratings_rater_id_fkey' })
  rater?: unknown;

  @Index('session_ratings_rated_id_idx')
  @Column({ name: 'rated_id', type: 'uuid' })
  ratedId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'rated_id', foreignKeyConstraintName: 'session_ratings_rated_id_fkey' })
  rated?: unknown;

  @Column({ type: 'smallint' })
  stars!: number;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
