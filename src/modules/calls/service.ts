import type { DataSource } from 'typeorm';
import type { Clock } from '../../infra/clock.js';
import type { EventBus } from '../../infra/events.js';
import type { IdGenerator } from '../../infra/ids.js';
import { isUniqueViolation, updateReturning } from '../../infra/sql.js';
import { AppError, NotFoundError } from '../../shared/errors.js';
import { decodeCursor, toPage } from '../../shared/pagination.js';
import type { ProfilesService } from '../users/index.js';
import { Call, CallRating, type EndedBy } from './entities.js';

export type { EndedBy };

export interface CallView {
  id: string;
  roomId: string;
  partner: { id: string; username: string | null; displayName: string | null };
  topic: string | null;
  level: string | null;
  startedAt: Date;
  endedAt: Date | null;
  durationSeconds: number | null;
  endedBy: EndedBy | null;
  myRating: number | null;
}

interface CallRow {
  id: string;
  room_id: string;
  user_a_id: string;
  user_b_id: string;
  topic: string | null;
  level: string | null;
  started_at: Date;
  ended_at: Date | null;
  duration_seconds: number | null;
  ended_by: EndedBy | null;
  my_rating: number | null;
}

/** Calls between matched users: opened at match, closed exactly once, rated once per participant. */
export class CallsService {
  constructor(
    private readonly db: DataSource,
    private readonly profiles: ProfilesService,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
    private readonly events: EventBus,
  ) {}

  async open(call: { roomId: string; userAId: string; userBId: string; topic: string | null; level: string | null }): Promise<string> {
    const now = this.clock.now();
    const id = this.ids.uuid();
    await this.db.getRepository(Call).insert({ id, ...call, startedAt: now, createdAt: now });
    return id;
  }

  /**
   * Ends the call of `roomId` if it is still running, and adds it to both users' stats in
   * the same transaction. Of any number of concurrent closes (end_call, disconnects,
   * timeouts, on any instance) exactly one does it; the others get null.
   */
  async close(roomId: string, endedBy: EndedBy): Promise<{ id: string; durationSeconds: number; userIds: [string, string] } | null> {
    const now = this.clock.now();
    const closed = await this.db.transaction(async (manager) => {
      const [row] = await updateReturning<{ id: string; user_a_id: string; user_b_id: string; duration_seconds: number }>(
        manager,
        `UPDATE call_sessions SET ended_at = $2, ended_by = $3, duration_seconds = GREATEST(0, floor(extract(epoch FROM ($2::timestamptz - started_at))))::int
         WHERE room_id = $1 AND ended_at IS NULL RETURNING id, user_a_id, user_b_id, duration_seconds`,
        [roomId, now, endedBy],
      );
      if (!row) return null;
      for (const userId of [row.user_a_id, row.user_b_id]) await this.profiles.recordCall(manager, userId, { seconds: row.duration_seconds, endedAt: now });
      return { id: row.id, durationSeconds: row.duration_seconds, userIds: [row.user_a_id, row.user_b_id] as [string, string] };
    });
    if (closed)
      await this.events.publish('call.ended', { callId: closed.id, roomId, userIds: closed.userIds, durationSeconds: closed.durationSeconds, endedBy });
    return closed;
  }

  private async view(rows: CallRow[], userId: string): Promise<CallView[]> {
    const partnerIds = rows.map((row) => (row.user_a_id === userId ? row.user_b_id : row.user_a_id));
    const names = await this.profiles.publicNames([...new Set(partnerIds)]);
    return rows.map((row, index) => {
      const partnerId = partnerIds[index]!;
      return {
        id: row.id,
        roomId: row.room_id,
        partner: names.get(partnerId) ?? { id: partnerId, username: null, displayName: null },
        topic: row.topic,
        level: row.level,
        startedAt: row.started_at,
        endedAt: row.ended_at,
        durationSeconds: row.duration_seconds,
        endedBy: row.ended_by,
        myRating: row.my_rating,
      };
    });
  }

  private readonly select = `SELECT s.*, r.stars AS my_rating FROM call_sessions s
    LEFT JOIN session_ratings r ON r.session_id = s.id AND r.rater_id = $1`;

  /** My calls, newest first. */
  async listMine(userId: string, limit: number, cursor?: string) {
    const position = decodeCursor(cursor);
    const rows = await this.db.query<CallRow[]>(
      `${this.select} WHERE (s.user_a_id = $1 OR s.user_b_id = $1) ${position ? 'AND (s.started_at, s.id) < ($3, $4)' : ''}
       ORDER BY s.started_at DESC, s.id DESC LIMIT $2`,
      position ? [userId, limit + 1, position.createdAt, position.id] : [userId, limit + 1],
    );
    const views = await this.view(rows, userId);
    return toPage(
      views.map((view) => ({ ...view, createdAt: view.startedAt })),
      limit,
      ({ createdAt: _createdAt, ...view }) => view,
    );
  }

  /** One of my calls; someone else's is as unknown as a missing one. */
  async getMine(userId: string, id: string): Promise<CallView> {
    const rows = await this.db.query<CallRow[]>(`${this.select} WHERE s.id = $2 AND (s.user_a_id = $1 OR s.user_b_id = $1)`, [userId, id]);
    if (!rows.length) throw new NotFoundError('Session');
    return (await this.view(rows, userId))[0]!;
  }

  /** Calls still running, oldest first (a partial index keeps this cheap however long the history). */
  async openCalls(limit: number): Promise<Array<{ roomId: string; startedAt: Date }>> {
    const rows = await this.db.query<Array<{ room_id: string; started_at: Date }>>(
      'SELECT room_id, started_at FROM call_sessions WHERE ended_at IS NULL ORDER BY started_at LIMIT $1',
      [limit],
    );
    return rows.map((row) => ({ roomId: row.room_id, startedAt: row.started_at }));
  }

  /** Calls started, and practice minutes of calls ended, since `since`. */
  async counts(since: Date): Promise<{ calls: number; practiceMinutes: number }> {
    const [row] = await this.db.query<[{ calls: number; seconds: number }]>(
      'SELECT count(*)::int AS calls, COALESCE(sum(duration_seconds), 0)::int AS seconds FROM call_sessions WHERE started_at >= $1',
      [since],
    );
    return { calls: row.calls, practiceMinutes: Math.round(row.seconds / 60) };
  }

  /** The two users of a call, or null when there is no such call. */
  async participants(id: string): Promise<[string, string] | null> {
    const call = await this.db.getRepository(Call).findOne({ where: { id }, select: { userAId: true, userBId: true } });
    return call ? [call.userAId, call.userBId] : null;
  }

  async rate(userId: string, id: string, stars: number): Promise<CallView> {
    const call = await this.getMine(userId, id);
    if (!call.endedAt) throw new AppError('conflict', 'Rate the call once it has ended');
    try {
      await this.db
        .getRepository(CallRating)
        .insert({ id: this.ids.uuid(), sessionId: id, raterId: userId, ratedId: call.partner.id, stars, createdAt: this.clock.now() });
    } catch (error) {
      if (isUniqueViolation(error, 'session_ratings_session_rater_unique')) throw new AppError('already_rated', 'You have rated this call already');
      throw error;
    }
    return this.getMine(userId, id);
  }
}
