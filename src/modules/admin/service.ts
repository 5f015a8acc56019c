import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from '../../infra/logger.js';
import { NotFoundError } from '../../shared/errors.js';
import type { AuditService } from '../audit/index.js';
import type { AuthService } from '../auth/index.js';
import type { CallsService } from '../calls/index.js';
import type { EventBus } from '../../infra/events.js';
import type { RealtimeBus } from '../../infra/realtime.js';
import type { NotificationsService } from '../notifications/index.js';
import type { ReportStatus, ReportsService, ReportView } from '../reports/index.js';
import type { AccountsService, ProfilesService, UserSearchFilter } from '../users/index.js';

export interface AdminServiceDependencies {
  db: DataSource;
  accounts: AccountsService;
  profiles: ProfilesService;
  auth: AuthService;
  reports: ReportsService;
  notifications: NotificationsService;
  events: EventBus;
  calls: CallsService;
  bus: RealtimeBus;
  audit: AuditService;
  logger: Logger;
}

/** What admins do to accounts; every action is in the activity log under the admin's id. */
export class AdminService {
  private readonly db: DataSource;
  private readonly accounts: AccountsService;
  private readonly profiles: ProfilesService;
  private readonly auth: AuthService;
  private readonly reports: ReportsService;
  private readonly notifications: NotificationsService;
  private readonly events: EventBus;
  private readonly calls: CallsService;
  private readonly bus: RealtimeBus;
  private readonly audit: AuditService;
  private readonly logger: Logger;
  constructor(dependencies: AdminServiceDependencies) {
    this.db = dependencies.db;
    this.accounts = dependencies.accounts;
    this.profiles = dependencies.profiles;
    this.auth = dependencies.auth;
    this.reports = dependencies.reports;
    this.notifications = dependencies.notifications;
    this.events = dependencies.events;
    this.calls = dependencies.calls;
    this.bus = dependencies.bus;
    this.audit = dependencies.audit;
    this.logger = dependencies.logger;
  }

  /** The dashboard's numbers; "today" is the UTC day. */
  async stats(now: Date) {
    const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const [users, calls, pendingReports, onlineNow, deliveries] = await Promise.all([
      this.accounts.counts(today),
      this.calls.counts(today),
      this.reports.pendingCount(),
      this.bus.onlineUserCount(),
      this.notifications.deliveryCounts(),
    ]);
    return {
      users: { total: users.total, newToday: users.newSince },
      onlineNow,
      calls: { today: calls.calls, practiceMinutesToday: calls.practiceMinutes },
      pendingReports,
      notifications: deliveries,
    };
  }

  async searchUsers(filter: UserSearchFilter, limit: number, cursor?: string) {
    return this.accounts.search(filter, limit, cursor);
  }

  /** Everything an admin needs to judge one user. */
  async userDetail(userId: string) {
    const account = await this.profiles.getMe(userId);
    const [sessions, reportsMade, reportsReceived] = await Promise.all([
      this.calls.listMine(userId, 10),
      this.reports.list({ reporterId: userId }, 20),
      this.reports.list({ reportedId: userId }, 20),
    ]);
    return { user: account, recentSessions: sessions.items, reportsMade: reportsMade.items, reportsReceived: reportsReceived.items };
  }

  /**
   * A ban takes effect everywhere at once: the flag and the revoked refresh tokens commit
   * together; then the sessions are denied (their sockets close on every instance), and any
   * search or call is left, the partner hearing peer_left.
   */
  async ban(adminId: string, userId: string, reason: string): Promise<void> {
    const sessions = await this.db.transaction((manager) => this.banIn(manager, adminId, userId, reason, {}));
    await this.afterBan(adminId, userId, reason, sessions);
  }

  /** The transactional half of a ban; returns the revoked sessions for afterBan. */
  private async banIn(manager: EntityManager, adminId: string, userId: string, reason: string, metadata: Record<string, unknown>): Promise<string[]> {
    if (!(await this.accounts.setBanned(manager, userId, true, reason))) throw new NotFoundError('User');
    const revoked = await this.auth.revokeAllSessions(manager, userId, 'banned');
    await this.audit.record({ type: 'user_banned', userId, actorId: adminId, metadata: { reason, sessionsRevoked: revoked.length, ...metadata } }, manager);
    return revoked;
  }

  /** The auth module denies the sessions at once; matchmaking ends the user's search and call. */
  private async afterBan(adminId: string, userId: string, reason: string, sessions: string[]): Promise<void> {
    await this.events.publish('user.banned', { userId, actorId: adminId, reason, sessionIds: sessions });
    this.logger.info({ userId, sessions: sessions.length }, 'user banned');
  }

  async unban(adminId: string, userId: string): Promise<void> {
    await this.db.transaction(async (manager) => {
      if (!(await this.accounts.setBanned(manager, userId, false, null))) throw new NotFoundError('User');
      await this.audit.record({ type: 'user_unbanned', userId, actorId: adminId }, manager);
    });
    await this.events.publish('user.unbanned', { userId, actorId: adminId });
  }

  /** Records the decision on a report, and bans the reported user in the same transaction when asked. */
  async reviewReport(
    adminId: string,
    reportId: string,
    decision: { status: Exclude<ReportStatus, 'pending'>; adminNote?: string | undefined; ban?: { reason: string } | undefined },
  ): Promise<ReportView> {
    const { report, revoked } = await this.db.transaction(async (manager) => {
      const reviewed = await this.reports.review(manager, adminId, reportId, decision);
      const sessions = decision.ban ? await this.banIn(manager, adminId, reviewed.reportedId, decision.ban.reason, { reportId }) : null;
      return { report: reviewed, revoked: sessions };
    });
    if (revoked && decision.ban) await this.afterBan(adminId, report.reportedId, decision.ban.reason, revoked);
    await this.events.publish('report.resolved', {
      reportId: report.id,
      reporterId: report.reporterId,
      reportedId: report.reportedId,
      status: decision.status,
      actorId: adminId,
    });
    return report;
  }
}
