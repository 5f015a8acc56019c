import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';

export const REPORT_REASONS = ['harassment', 'spam', 'inappropriate', 'hate_speech', 'other'] as const;
export const REPORT_STATUSES = ['pending', 'reviewed', 'actioned', 'dismissed'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

@Entity('reports')
@Unique('reports_session_reporter_unique', ['sessionId', 'reporterId'])
@Check('reports_reason_check', `reason IN ('harassment', 'spam', 'inappropriate', 'hate_speech', 'other')`)
@Check('reports_status_check', `status IN ('pending', 'reviewed', 'actioned', 'dismissed')`)
@Index('reports_reporter_id_idx', ['reporterId', 'createdAt'])
@Index('reports_reported_id_status_idx', ['reportedId', 'status'])
@Index('reports_status_created_at_idx', ['status', 'createdAt'])
export class Report {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'reporter_id', type: 'uuid' })
  reporterId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'reporter_id', foreignKeyConstraintName: 'reports_reporter_id_fkey' })
  reporter?: unknown;

  @Column({ name: 'reported_id', type: 'uuid' })
  reportedId!: string;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'reported_id', foreignKeyConstraintName: 'reports_reported_id_fkey' })
  reported?: unknown;

  @Index('reports_session_id_idx')
  @Column({ name: 'session_id', type: 'uuid', nullable: true })
  sessionId!: string | null;

  @ManyToOne('Call', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'reports_session_id_fkey' })
  session?: unknown;

  @Column({ type: 'varchar', length: 16 })
  reason!: (typeof REPORT_REASONS)[number];

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  @Column({ type: 'varchar', length: 16, default: 'pending' })
  status!: ReportStatus;

  @Column({ name: 'admin_note', type: 'text', nullable: true })
  adminNote!: string | null;

  @Index('reports_reviewed_by_idx')
  @Column({ name: 'reviewed_by', type: 'uuid', nullable: true })
  reviewedBy!: string | null;

  @ManyToOne('User', { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'reviewed_by', foreignKeyConstraintName: 'reports_reviewed_by_fkey' })
  reviewer?: unknown;

  @Column({ name: 'actioned_at', type: 'timestamptz', nullable: true })
  actionedAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
