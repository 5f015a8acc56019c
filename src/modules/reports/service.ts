import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { EventBus } from '../../infra/events.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { Logger } from '../../infra/logger.js';
import { isUniqueViolation } from '../../infra/sql.js';
import { transactionWithRetry } from '../../infra/transactions.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { AuditService } from '../audit/index.js';
import type { CallsService } from '../calls/index.js';
import type { AccountsService } from '../users/index.js';
import { Report, type REPORT_REASONS, type ReportStatus } from './entities.js';

export type { ReportStatus };

/** Pending reports that flag a user for review. */
export const FLAG_THRESHOLD = 3;

export interface ReportView {
  id: string;
  reporterId: string;
  reportedId: string;
  sessionId: string | null;
  reason: (typeof REPORT_REASONS)[number];
  description: string | null;
  status: ReportStatus;
  adminNote: string | null;
  actionedAt: Date | null;
  createdAt: Date;
}

function view(report: Omit<Report, 'reporter' | 'reported' | 'session' | 'reviewer' | 'reviewedBy'>): ReportView {
  return {
    id: report.id,
    reporterId: report.reporterId,
    reportedId: report.reportedId,
    sessionId: report.sessionId,
    reason: report.reason,
    description: report.description,
    status: report.status,
    adminNote: report.adminNote,
    actionedAt: report.actionedAt,
    createdAt: report.createdAt,
  };
}

export interface ReportsServiceDependencies {
  db: DataSource;
  accounts: AccountsService;
  calls: CallsService;
  audit: AuditService;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  events: EventBus;
}

/** Users reporting each other; three pending reports flag a user for an admin. */
export class ReportsService {
  private readonly db: DataSource;
  private readonly accounts: AccountsService;
  private readonly calls: CallsService;
  private readonly audit: AuditService;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly logger: Logger;
  private readonly events: EventBus;
  constructor(dependencies: ReportsServiceDependencies) {
    this.db = dependencies.db;
    this.accounts = dependencies.accounts;
    this.calls = dependencies.calls;
    this.audit = dependencies.audit;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.logger = dependencies.logger;
    this.events = dependencies.events;
  }

  async create(
    reporterId: string,
    input: { reportedId: string; reason: (typeof REPORT_REASONS)[number]; description?: string | undefined; sessionId?: string | undefined },
  ): Promise<ReportView> {
    if (input.reportedId === reporterId)
      throw new AppError('validation_failed', 'You cannot report yourself', { fields: [{ in: 'body', path: 'reportedId', message: 'is you' }] });
    if (!(await this.accounts.exists(input.reportedId))) throw new NotFoundError('User');
    if (input.sessionId) {
      const participants = await this.calls.participants(input.sessionId);
      if (!participants?.includes(reporterId) || !participants.includes(input.reportedId)) {
        throw new AppError('forbidden', 'That user was not your partner in that call');
      }
    }
    const report = {
      id: this.ids.uuid(),
      reporterId,
      reportedId: input.reportedId,
      sessionId: input.sessionId ?? null,
      reason: input.reason,
      description: input.description ?? null,
      status: 'pending' as const,
      adminNote: null,
      actionedAt: null,
      reviewedBy: null,
      createdAt: this.clock.now(),
    };
    let flagged: boolean;
    try {
      flagged = await transactionWithRetry(this.db, async (manager) => {
        // the reported user's lock first, then the insert: every report about one user takes its
        // locks in the same order, so concurrent reports queue instead of deadlocking
        if (!(await this.accounts.lockForUpdate(manager, input.reportedId))) throw new NotFoundError('User');
        await manager.insert(Report, report);
        return this.flagIfNeeded(manager, input.reportedId);
      });
    } catch (error) {
      if (isUniqueViolation(error, 'reports_session_reporter_unique')) throw new AppError('already_reported', 'You have reported this call already');
      throw error;
    }
    if (flagged) this.logger.warn({ userId: input.reportedId }, `user flagged for review: ${FLAG_THRESHOLD} pending reports`);
    await this.events.publish('report.created', { reportId: report.id, reporterId, reportedId: input.reportedId, reason: input.reason, flagged });
    return view(report);
  }

  /** In the transaction that holds the user's lock, so the threshold is crossed exactly once. */
  private async flagIfNeeded(manager: EntityManager, userId: string): Promise<boolean> {
    const [{ pending }] = await manager.query<[{ pending: number }]>(
      "SELECT count(*)::int AS pending FROM reports WHERE reported_id = $1 AND status = 'pending'",
      [userId],
    );
    if (pending < FLAG_THRESHOLD || !(await this.accounts.flagForReview(manager, userId))) return false;
    await this.audit.record({ type: 'user_flagged', userId, metadata: { pendingReports: pending } }, manager);
    return true;
  }

  async pendingCount(): Promise<number> {
    return this.db.getRepository(Report).count({ where: { status: 'pending' } });
  }

  async listMine(reporterId: string, limit: number, cursor?: string) {
    return this.list({ reporterId }, limit, cursor);
  }

  async list(filter: { reporterId?: string; reportedId?: string; status?: ReportStatus }, limit: number, cursor?: string) {
    const position = decodeCursor(cursor);
    const query = this.db
      .getRepository(Report)
      .createQueryBuilder('report')
      .orderBy('report.created_at', 'DESC')
      .addOrderBy('report.id', 'DESC')
      .take(limit + 1);
    if (filter.reporterId) query.andWhere('report.reporter_id = :reporterId', { reporterId: filter.reporterId });
    if (filter.reportedId) query.andWhere('report.reported_id = :reportedId', { reportedId: filter.reportedId });
    if (filter.status) query.andWhere('report.status = :status', { status: filter.status });
    if (position) query.andWhere('(report.created_at, report.id) < (:createdAt, :id)', position);
    return toPage(await query.getMany(), limit, view);
  }

  /** An admin's decision, in the caller's transaction. */
  async review(
    manager: EntityManager,
    adminId: string,
    reportId: string,
    decision: { status: Exclude<ReportStatus, 'pending'>; adminNote?: string | undefined },
  ): Promise<ReportView> {
    const [row] = await manager.query<Array<{ id: string }>>('SELECT id FROM reports WHERE id = $1 FOR UPDATE', [reportId]);
    if (!row) throw new NotFoundError('Report');
    await manager.update(
      Report,
      { id: reportId },
      { status: decision.status, adminNote: decision.adminNote ?? null, reviewedBy: adminId, actionedAt: this.clock.now() },
    );
    const report = await manager.getRepository(Report).findOneOrFail({ where: { id: reportId } });
    await this.audit.record({ type: 'report_reviewed', userId: report.reportedId, actorId: adminId, metadata: { reportId, status: decision.status } }, manager);
    return view(report);
  }
}
