import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { LockService } from '../../infra/locks.js';
import type { Logger } from '../../infra/logger.js';
import type { SecurityEvent, SecurityEventSink } from '../../shared/security-events.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { SecurityEventSampler } from './security-sampler.js';

/** What the activity log records; a stable list, so readers can filter on it. */
export const ACTIVITY_TYPES = [
  'register',
  'login',
  'login_failed',
  'logout',
  'logout_all',
  'session_revoked',
  'refresh_token_reused',
  'password_reset_requested',
  'password_reset',
  'email_verified',
  'account_deleted',
  'invite_created',
  'invite_used',
  'role_changed',
  'user_banned',
  'user_unbanned',
  'user_flagged',
  'report_reviewed',
  'ollama_key_stored',
  'ollama_key_revealed',
  'ollama_key_deleted',
  'ws_auth_failed',
  'ws_ip_blocked',
  'security_suspicious_content',
  'external_identity_linked',
  'rate_limited',
  'socket_auth_failed',
] as const;
export type ActivityType = (typeof ACTIVITY_TYPES)[number];

/** The security events: refused and suspicious traffic, each with the IP and the reason (`?category=security`). */
export const SECURITY_ACTIVITY_TYPES = [
  'rate_limited',
  'socket_auth_failed',
  'ws_auth_failed',
  'ws_ip_blocked',
  'security_suspicious_content',
] as const satisfies readonly ActivityType[];

/** Groups of types an admin can ask for at once. */
export const ACTIVITY_CATEGORIES = { security: SECURITY_ACTIVITY_TYPES } as const;
export type ActivityCategory = keyof typeof ACTIVITY_CATEGORIES;

export interface ActivityEntry {
  type: ActivityType;
  /** The account the entry is about. */
  userId?: string | null;
  /** Who did it, when not the user themself (an admin). */
  actorId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  metadata?: Record<string, unknown>;
}

export interface ActivityRecord {
  id: string;
  type: ActivityType;
  userId: string | null;
  actorId: string | null;
  ip: string | null;
  userAgent: string | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

interface ActivityRow {
  id: string;
  type: ActivityType;
  user_id: string | null;
  actor_id: string | null;
  ip: string | null;
  user_agent: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
}

const PARTITIONS_LOCK = 'audit.partitions';
/** Creating two partitions takes milliseconds; a starting instance waits this long for another's. */
const PARTITIONS_LOCK_TTL_MS = 30_000;

function monthStart(date: Date, offset: number): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offset, 1));
}

// owns table: activity_logs (partitioned by month, which TypeORM cannot describe)
/**
 * The activity and security log, in a PostgreSQL table partitioned by month. Entries are
 * written in the caller's transaction, so an action and its record commit together.
 */
export class AuditService implements SecurityEventSink {
  constructor(
    private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
    private readonly security: { sampler: SecurityEventSampler; logger: Logger },
    private readonly locks: LockService,
  ) {}

  /**
   * Creates this month's and the next `monthsAhead` months' partitions when missing. Under a
   * lock: two instances creating one partition at once fail on PostgreSQL's catalogue
   * (IF NOT EXISTS does not cover a concurrent CREATE).
   */
  async ensurePartitions(monthsAhead = 1): Promise<string[]> {
    return this.locks.withLock(PARTITIONS_LOCK, { ttl: PARTITIONS_LOCK_TTL_MS, wait: PARTITIONS_LOCK_TTL_MS }, () => this.createPartitions(monthsAhead));
  }

  private async createPartitions(monthsAhead: number): Promise<string[]> {
    const now = this.clock.now();
    const created: string[] = [];
    for (let offset = 0; offset <= monthsAhead; offset += 1) {
      const from = monthStart(now, offset);
      const to = monthStart(now, offset + 1);
      const name = `activity_logs_${from.getUTCFullYear()}_${String(from.getUTCMonth() + 1).padStart(2, '0')}`;
      const [{ exists }] = await this.db.query<[{ exists: boolean }]>('SELECT to_regclass($1) IS NOT NULL AS exists', [name]);
      if (exists) continue;
      await this.db.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF activity_logs FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`);
      created.push(name);
    }
    return created;
  }

  async record(entry: ActivityEntry, manager: EntityManager | DataSource = this.db): Promise<void> {
    await manager.query(
      'INSERT INTO activity_logs (id, user_id, actor_id, type, ip, user_agent, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [
        this.ids.uuid(),
        entry.userId ?? null,
        entry.actorId ?? null,
        entry.type,
        entry.ip ?? null,
        entry.userAgent?.slice(0, 512) ?? null,
        JSON.stringify(entry.metadata ?? {}),
        this.clock.now(),
      ],
    );
  }

  /**
   * A security event, written off the caller's path: at most one per IP and type a minute (the
   * sampler counts in Redis, so a flood on many instances still cannot fill the table). A
   * failure is logged, never the caller's problem.
   */
  reportSecurityEvent(event: SecurityEvent): void {
    const write = async () => {
      if (!(await this.security.sampler.admit(event.type, event.ip))) return;
      await this.record(event);
    };
    write().catch((error: unknown) => this.security.logger.error({ err: error, type: event.type }, 'could not write a security event'));
  }

  /** Entries about one user, newest first. */
  async listForUser(userId: string, limit: number, cursor?: string) {
    return this.list({ userId }, limit, cursor);
  }

  async list(filter: { userId?: string; type?: ActivityType; category?: ActivityCategory; from?: Date; to?: Date }, limit: number, cursor?: string) {
    const position = decodeCursor(cursor);
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (filter.userId) add('user_id = ?', filter.userId);
    if (filter.type) add('type = ?', filter.type);
    if (filter.category) add('type = ANY(?)', [...ACTIVITY_CATEGORIES[filter.category]]);
    if (filter.from) add('created_at >= ?', filter.from);
    if (filter.to) add('created_at < ?', filter.to);
    if (position) {
      values.push(position.createdAt, position.id);
      where.push(`(created_at, id) < ($${values.length - 1}, $${values.length})`);
    }
    values.push(limit + 1);
    const rows = await this.db.query<ActivityRow[]>(
      `SELECT id, type, user_id, actor_id, ip, user_agent, metadata, created_at FROM activity_logs
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
      values,
    );
    return toPage(
      rows.map((row) => ({ ...row, createdAt: row.created_at })),
      limit,
      (row): ActivityRecord => ({
        id: row.id,
        type: row.type,
        userId: row.user_id,
        actorId: row.actor_id,
        ip: row.ip,
        userAgent: row.user_agent,
        metadata: row.metadata,
        createdAt: row.created_at,
      }),
    );
  }
}
