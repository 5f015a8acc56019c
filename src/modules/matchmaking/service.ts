import type { Redis } from 'ioredis';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { EventBus } from '../../infra/events.js';
import type { Logger } from '../../infra/logger.js';
import type { RealtimeBus } from '../../infra/realtime.js';
import { MATCH_KEYS_LUA, ROOM_PARTS, redisKeys, type RoomPart } from '../../infra/redis-keys.js';
import type { EndedBy, CallsService } from '../calls/index.js';
import type { SocketErrorCode } from '../../shared/socket-errors.js';
import type { ProfilesService } from '../users/index.js';
import { iceServersFor, type TurnSettings } from './turn.js';

export const QUEUE_LEVELS = ['all', 'beginner', 'intermediate', 'advanced'] as const;
export type QueueLevel = (typeof QUEUE_LEVELS)[number];

/** match:searching:{userId} lives this long (document 002: "SET match:searching:{userId} with TTL 5min"). */
const SEARCHING_KEY_TTL_MS = 5 * 60_000;
/** Open calls looked at per sweep, oldest first; more than any instance holds at once. */
const SWEEP_BATCH = 5_000;
/** Due AI partner offers claimed per sweep, the earliest first (the rest wait for the next sweep): 2,000 values, well within what Lua's unpack takes. */
const OFFER_BATCH = 1_000;

/**
 * Pairs atomically: skips (and drops) queue entries whose search has ended, never pairs a
 * user with themself, and queues the caller only when nobody compatible is waiting: at the
 * back (RPUSH), or at the front (LPUSH) for a user whose partner cancelled the match.
 * The searching key holds "1", as document 002 gives it; the queue level, which a cancel needs to
 * leave the right queue, is in KEYS[5]. A queued search gets its AI partner offer due at ARGV[9]
 * (none when empty).
 */
const FIND_PARTNER = `${MATCH_KEYS_LUA}
local me = ARGV[1]
if redis.call('EXISTS', userRoomKey(me)) == 1 then return {'already_in_room'} end
if redis.call('EXISTS', searchingKey(me)) == 1 then return {'already_searching'} end
while true do
  local other = redis.call('LPOP', KEYS[1])
  if not other then break end
  local on = redis.call('HGET', KEYS[3], other)
  -- a searcher counts only while the instance holding its socket is alive
  local alive = on and redis.call('EXISTS', instanceHeartbeatKey(on)) == 1
  if other ~= me and alive and redis.call('EXISTS', searchingKey(other)) == 1 then
    redis.call('DEL', searchingKey(other))
    local since = redis.call('HGET', KEYS[2], other)
    redis.call('HDEL', KEYS[2], other)
    redis.call('HDEL', KEYS[3], other)
    redis.call('HDEL', KEYS[5], other)
    -- both belong to the room in the same step, so neither can be matched again meanwhile
    redis.call('SET', userRoomKey(other), ARGV[5], 'EX', ARGV[6])
    redis.call('SET', userRoomKey(me), ARGV[5], 'EX', ARGV[6])
    return {'matched', other, since, on}
  end
  if other ~= me and not alive then
    redis.call('DEL', searchingKey(other))
    redis.call('HDEL', KEYS[2], other)
    redis.call('HDEL', KEYS[3], other)
    redis.call('HDEL', KEYS[5], other)
  end
end
redis.call(ARGV[7], KEYS[1], me)
redis.call('SET', searchingKey(me), '1', 'PX', ARGV[3])
redis.call('HSET', KEYS[5], me, ARGV[2])
redis.call('HSET', KEYS[2], me, ARGV[4])
redis.call('HSET', KEYS[3], me, ARGV[8])
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[4], ARGV[9], me) end
return {'queued'}
`;

/**
 * Ends a user's search. A search runs while its level is in KEYS[3]: its searching key may have
 * expired a moment before the gateway's timer ends it (both are MATCH_SEARCH_TIMEOUT long), and
 * that search still ends here, told search_timeout.
 */
const CANCEL_SEARCH = `${MATCH_KEYS_LUA}
local level = redis.call('HGET', KEYS[3], ARGV[1])
local marked = redis.call('DEL', searchingKey(ARGV[1]))
if not level then return marked end
redis.call('LREM', matchQueueKey(level), 0, ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`;

/**
 * Claims the AI partner offers due by ARGV[1] (at most ARGV[2]): each is taken off the schedule
 * here, so an offer is made once whichever instances sweep at once. Replies user, level, … for
 * the searches still running on a live instance; an offer whose search ended (matched,
 * cancelled, timed out) or whose instance died is dropped.
 */
const CLAIM_AI_PARTNER_OFFERS = `${MATCH_KEYS_LUA}
local offers = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])) do
  redis.call('ZREM', KEYS[1], user)
  local level = redis.call('HGET', KEYS[3], user)
  local on = redis.call('HGET', KEYS[2], user)
  if level and on and redis.call('EXISTS', searchingKey(user)) == 1 and redis.call('EXISTS', instanceHeartbeatKey(on)) == 1 then
    table.insert(offers, user)
    table.insert(offers, level)
  end
end
-- a table constructor: the in-process emulation (ioredis-mock) loses a table of 2+ entries built by insertion
return {unpack(offers)}
`;

/** An instance that stops: its heartbeat goes, and so do the searches of its sockets. Replies their users. */
const RETIRE_INSTANCE = `${MATCH_KEYS_LUA}
redis.call('DEL', instanceHeartbeatKey(ARGV[1]))
local gone = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local user = entries[i]
  if entries[i + 1] == ARGV[1] then
    local level = redis.call('HGET', KEYS[3], user)
    if level then redis.call('LREM', matchQueueKey(level), 0, user) end
    redis.call('DEL', searchingKey(user))
    redis.call('HDEL', KEYS[1], user)
    redis.call('HDEL', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
    table.insert(gone, user)
  end
end
-- the in-process emulation (ioredis-mock) loses a table built by insertion unless it is returned through
-- a constructor; Redis's own Lua cannot unpack that many values past a few thousand, nor does it need to
if #gone > 1000 then return gone end
return {unpack(gone)}
`;

/**
 * Undoes the match of a user who leaves it before joining its room (ARGV[2] names the room
 * when only that one may be left). Replies {'left', roomId, partnerId or ''};
 * {'joined', roomId} when the user has joined it (leaving is then ending the call);
 * {'pending', roomId} when the room is still being opened (its opener then leaves it for the
 * user, so the partner hears match_found before partner_cancelled); or {'none'}. The room's meta stays until the call row is closed: the stale-call sweep
 * takes a call whose meta is gone for one Redis lost.
 */
const LEAVE_MATCH = `${MATCH_KEYS_LUA}
local me = ARGV[1]
local roomId = redis.call('GET', userRoomKey(me))
if not roomId or (ARGV[2] ~= '' and roomId ~= ARGV[2]) then return {'none'} end
if redis.call('SISMEMBER', roomKey(roomId, 'joined'), me) == 1 then return {'joined', roomId} end
if redis.call('EXISTS', roomKey(roomId, 'ready')) == 0 then
  -- still being opened (call row, match_found): the opener leaves it for us once done
  redis.call('SET', roomKey(roomId, 'left-by'), me, 'EX', ARGV[3])
  return {'pending', roomId}
end
local partner = ''
for _, id in ipairs(redis.call('SMEMBERS', roomKey(roomId, 'users'))) do
  if id ~= me then partner = id end
end
-- every part but the meta, which the caller deletes once the call row is closed
for i = 4, #ARGV do redis.call('DEL', roomKey(roomId, ARGV[i])) end
redis.call('DEL', userRoomKey(me))
if partner ~= '' and redis.call('GET', userRoomKey(partner)) == roomId then
  redis.call('DEL', userRoomKey(partner))
else
  partner = ''
end
return {'left', roomId, partner}
`;

/** Deletes the two users' room keys only while they still name this room (either may be in a newer one). */
const LEAVE_ROOM = `
for i = 1, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
`;

/**
 * Joins a user to the room's signaling in one step, so concurrent joins see one order: the
 * first to join becomes the caller. Replies [callerId, joinedCount, tellPartner].
 *
 * The caller must hear { role: "caller" } before the receiver pair, but the two come from
 * different instances when the partners are on different instances. So the partner who joins
 * second tells the caller only once the caller's instance has marked it told (KEYS[3]);
 * otherwise it leaves the caller's receiver event owed (KEYS[4]) for that instance to send
 * right after its own { role: "caller" }.
 */
const JOIN_ROOM = `
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local caller = redis.call('GET', KEYS[1])
local count = redis.call('SCARD', KEYS[2])
local tellPartner = 0
if count >= 2 then
  if caller == ARGV[1] or redis.call('EXISTS', KEYS[3]) == 1 then
    tellPartner = 1
  else
    redis.call('SET', KEYS[4], '1', 'EX', ARGV[2])
  end
end
return {caller, count, tellPartner}
`;

/** Marks the caller told; replies 1 when the partner left the caller's receiver event to us. */
const CALLER_TOLD = `
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return redis.call('DEL', KEYS[2])
`;

type MatchRedis = Redis & {
  parleyFindPartner(
    queue: string,
    queuedAt: string,
    searchingOn: string,
    aiPartnerDue: string,
    searchLevel: string,
    userId: string,
    level: string,
    ttlMs: number,
    nowMs: number,
    roomId: string,
    roomTtlSeconds: number,
    push: 'RPUSH' | 'LPUSH',
    instanceId: string,
    aiPartnerDueAt: number | '',
  ): Promise<[string, string?, string?, string?]>;
  /** Replies user ids and their queue levels, alternating. */
  parleyClaimAiPartnerOffers(aiPartnerDue: string, searchingOn: string, searchLevel: string, nowMs: number, limit: number): Promise<string[]>;
  parleyRetireInstance(searchingOn: string, queuedAt: string, searchLevel: string, instanceId: string): Promise<string[]>;
  /** `roomParts`: the room's keys to delete once it is left. */
  parleyLeaveMatch(userId: string, onlyRoomId: string, ttlSeconds: number, ...roomParts: RoomPart[]): Promise<[string, string?, string?]>;
  parleyCancelSearch(queuedAt: string, searchingOn: string, searchLevel: string, userId: string): Promise<number>;
  parleyLeaveRoom(userARoomKey: string, userBRoomKey: string, roomId: string): Promise<number>;
  parleyJoinRoom(callerKey: string, joinedKey: string, toldKey: string, owedKey: string, userId: string, ttlSeconds: number): Promise<[string, number, number]>;
  parleyCallerTold(toldKey: string, owedKey: string, ttlSeconds: number): Promise<number>;
};

export interface MatchmakingSettings {
  searchTimeoutMs: number;
  /** A search outlives its user's last socket this long (the app in the background); 0 ends it at once. */
  backgroundGraceMs: number;
  /** Searchers of an instance whose heartbeat is older than this are never matched. */
  instanceTtlMs: number;
  /** Calls end with `timeout` after this long; the room's keys outlive it by ten minutes. */
  maxCallMs: number;
  /** A search waiting this long is told the AI partner is available (MATCH_AI_FALLBACK_SECONDS); 0: never. */
  aiFallbackMs: number;
  /** The server has an AI upstream of its own (OLLAMA_BASE_URL): without one, the AI partner is never offered. */
  aiPartnerConfigured: boolean;
  turn: TurnSettings;
}

export type LeaveOutcome =
  | { status: 'none' }
  /** The user had joined the room: leaving it is ending the call. */
  | { status: 'joined'; roomId: string }
  /** `partner.outcome`: how its search again went (rejected when it had started one itself). */
  | { status: 'left'; roomId: string; partner: { userId: string; outcome: FindOutcome } | null };

export type FindOutcome =
  | { status: 'queued'; estimatedWaitSeconds: number }
  /** `left`: one of the two left the match while it was being opened. */
  | { status: 'matched'; roomId: string; left?: LeaveOutcome }
  | {
      status: 'rejected';
      code: Extract<SocketErrorCode, 'account_banned' | 'profile_incomplete' | 'already_searching' | 'already_in_room'>;
      message: string;
      missing?: string[];
    };

export interface Room {
  roomId: string;
  users: string[];
}

export interface MatchmakingServiceDependencies {
  redis: Redis;
  profiles: ProfilesService;
  calls: CallsService;
  bus: RealtimeBus;
  events: EventBus;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

/** The queue and the rooms, in Redis (keys as module 04 gives them), shared by every instance. */
export class MatchmakingService {
  private readonly profiles: ProfilesService;
  private readonly calls: CallsService;
  private readonly bus: RealtimeBus;
  private readonly events: EventBus;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly logger: Logger;
  private readonly redis: MatchRedis;
  private readonly roomTtlSeconds: number;
  /** This process; the searches of its sockets name it, and its heartbeat key says it is alive. */
  readonly instanceId: string;
  /** How long a search waits before the AI partner is offered to it; 0: it never is. */
  readonly aiFallbackMs: number;

  constructor(
    dependencies: MatchmakingServiceDependencies,
    private readonly settings: MatchmakingSettings,
  ) {
    const { redis, ids } = dependencies;
    this.profiles = dependencies.profiles;
    this.calls = dependencies.calls;
    this.bus = dependencies.bus;
    this.events = dependencies.events;
    this.clock = dependencies.clock;
    this.ids = dependencies.ids;
    this.logger = dependencies.logger;
    redis.defineCommand('parleyFindPartner', { numberOfKeys: 5, lua: FIND_PARTNER });
    redis.defineCommand('parleyClaimAiPartnerOffers', { numberOfKeys: 3, lua: CLAIM_AI_PARTNER_OFFERS });
    redis.defineCommand('parleyRetireInstance', { numberOfKeys: 3, lua: RETIRE_INSTANCE });
    redis.defineCommand('parleyCancelSearch', { numberOfKeys: 3, lua: CANCEL_SEARCH });
    redis.defineCommand('parleyLeaveRoom', { numberOfKeys: 2, lua: LEAVE_ROOM });
    redis.defineCommand('parleyLeaveMatch', { numberOfKeys: 0, lua: LEAVE_MATCH });
    redis.defineCommand('parleyJoinRoom', { numberOfKeys: 4, lua: JOIN_ROOM });
    redis.defineCommand('parleyCallerTold', { numberOfKeys: 2, lua: CALLER_TOLD });
    this.redis = redis as MatchRedis;
    this.roomTtlSeconds = Math.ceil(settings.maxCallMs / 1000) + 10 * 60;
    this.instanceId = ids.uuid();
    this.aiFallbackMs = settings.aiPartnerConfigured ? settings.aiFallbackMs : 0;
  }

  /** Says this instance is alive for another `instanceTtlMs`; call it every third of that. */
  async heartbeat(): Promise<void> {
    await this.redis.set(redisKeys.instanceHeartbeat(this.instanceId), '1', 'PX', this.settings.instanceTtlMs);
  }

  /** On shutdown: this instance stops being matchable, and the searches of its sockets end. Returns their users. */
  async retire(): Promise<string[]> {
    return this.redis.parleyRetireInstance(redisKeys.searchingOn, redisKeys.queuedAt, redisKeys.searchLevel, this.instanceId);
  }

  async activeRoom(userId: string): Promise<string | null> {
    return this.redis.get(redisKeys.userRoom(userId));
  }

  async findPartner(userId: string, request: { level?: QueueLevel | undefined; topic?: string | undefined }): Promise<FindOutcome> {
    const [{ active, completion }, room] = await Promise.all([this.profiles.matchmakingEligibility(userId), this.activeRoom(userId)]);
    if (!active) return { status: 'rejected', code: 'account_banned', message: 'This account cannot use matchmaking' };
    if (!completion.complete) return { status: 'rejected', code: 'profile_incomplete', message: 'Complete your profile first', missing: completion.missing };
    if (room) return { status: 'rejected', code: 'already_in_room', message: 'You are in a call; end it first' };
    return this.pair(userId, request.level ?? 'all', request.topic ?? null, 'RPUSH', this.instanceId);
  }

  /** `instanceId`: the instance holding the user's socket, which its queue entry names. */
  private async pair(userId: string, level: QueueLevel, topic: string | null, push: 'RPUSH' | 'LPUSH', instanceId: string): Promise<FindOutcome> {
    const now = this.clock.now().getTime();
    // Document 002's five minutes, or the whole search when MATCH_SEARCH_TIMEOUT is longer: the
    // gateway's timer ends the search and tells the client; the expiry only cleans up after an
    // instance that died meanwhile.
    const keyTtlMs = Math.max(SEARCHING_KEY_TTL_MS, this.settings.searchTimeoutMs);
    const roomId = this.ids.uuid();
    const [outcome, partnerId, since, partnerInstance] = await this.redis.parleyFindPartner(
      redisKeys.matchQueue(level),
      redisKeys.queuedAt,
      redisKeys.searchingOn,
      redisKeys.aiPartnerDue,
      redisKeys.searchLevel,
      userId,
      level,
      keyTtlMs,
      now,
      roomId,
      this.roomTtlSeconds,
      push,
      instanceId,
      this.aiFallbackMs ? now + this.aiFallbackMs : '',
    );
    if (outcome === 'already_searching') return { status: 'rejected', code: 'already_searching', message: 'You are already searching' };
    if (outcome === 'already_in_room') return { status: 'rejected', code: 'already_in_room', message: 'You are in a call; end it first' };
    if (outcome === 'queued' || !partnerId) return { status: 'queued', estimatedWaitSeconds: await this.estimatedWait(level) };
    if (since) await this.recordWait(level, (now - Number(since)) / 1000);
    const left = await this.openRoom(roomId, { userId: partnerId, instanceId: partnerInstance ?? '' }, { userId, instanceId }, level, topic);
    return { status: 'matched', roomId, ...(left ? { left } : {}) };
  }

  /**
   * A matched user leaves the match before joining its room (cancel_search, or a disconnect
   * past the grace): the call row closes as ended by them, and the partner hears
   * partner_cancelled and searches again at the front of the queue (matched at once when
   * someone compatible waits). `onlyRoomId` limits this to that room.
   */
  async leaveMatch(userId: string, onlyRoomId?: string): Promise<LeaveOutcome> {
    const [status, roomId, partnerId] = await this.redis.parleyLeaveMatch(
      userId,
      onlyRoomId ?? '',
      this.roomTtlSeconds,
      ...ROOM_PARTS.filter((part) => part !== 'meta'),
    );
    if (status === 'joined') return { status: 'joined', roomId: roomId! };
    if (status === 'pending') return { status: 'left', roomId: roomId!, partner: null };
    if (status !== 'left' || !roomId) return { status: 'none' };
    const meta = await this.redis.hgetall(redisKeys.room(roomId, 'meta'));
    // ended by the one who left, as end_call would record it
    await this.calls.close(roomId, meta.userAId === userId ? 'user_a' : meta.userBId === userId ? 'user_b' : 'error');
    await this.redis.del(redisKeys.room(roomId, 'meta'));
    this.bus.closeCall(roomId);
    this.logger.info({ roomId }, 'match cancelled before the call');
    // a partner gone too is not put back in the queue, where it would be matched as a ghost
    if (!partnerId || !(await this.bus.isOnline(partnerId))) return { status: 'left', roomId, partner: null };
    this.bus.emitToUser(partnerId, 'partner_cancelled');
    const level = QUEUE_LEVELS.find((name) => name === meta.level) ?? 'all';
    const partnerInstance = meta.userAId === partnerId ? meta.instanceA : meta.instanceB;
    const again = await this.pair(partnerId, level, meta.topic || null, 'LPUSH', partnerInstance ?? this.instanceId);
    // Gone meanwhile: its disconnect handler may have run before it was queued again. (Had it
    // been matched at once, the new room's disconnect handling covers it.)
    if (again.status === 'queued' && !(await this.bus.isOnline(partnerId))) {
      await this.cancelSearch(partnerId);
      return { status: 'left', roomId, partner: null };
    }
    return { status: 'left', roomId, partner: { userId: partnerId, outcome: again } };
  }

  /** A moving average of how long the waiting side of recent matches waited, per queue. */
  private async recordWait(level: QueueLevel, seconds: number): Promise<void> {
    const key = redisKeys.waitEstimate(level);
    const previous = Number(await this.redis.get(key));
    const average = Number.isFinite(previous) && previous > 0 ? previous * 0.8 + seconds * 0.2 : seconds;
    await this.redis.set(key, average.toFixed(1), 'EX', 3600);
  }

  private async estimatedWait(level: QueueLevel): Promise<number> {
    const recent = Number(await this.redis.get(redisKeys.waitEstimate(level)));
    return Number.isFinite(recent) && recent > 0 ? Math.max(1, Math.round(recent)) : 30;
  }

  /**
   * Tells each search that has waited MATCH_AI_FALLBACK_SECONDS, once, that the AI partner is
   * available: `searching` again, with the current estimate. Run by a scheduled job; the claim
   * is atomic, so sweeps that overlap still tell each search once. Returns how many were told.
   */
  async offerAiPartner(): Promise<number> {
    const claimed = await this.redis.parleyClaimAiPartnerOffers(
      redisKeys.aiPartnerDue,
      redisKeys.searchingOn,
      redisKeys.searchLevel,
      this.clock.now().getTime(),
      OFFER_BATCH,
    );
    const estimates = new Map<QueueLevel, number>();
    for (let index = 0; index < claimed.length; index += 2) {
      const [userId, queued] = [claimed[index]!, claimed[index + 1]];
      const level = QUEUE_LEVELS.find((name) => name === queued) ?? 'all';
      const estimate = estimates.get(level) ?? (await this.estimatedWait(level));
      estimates.set(level, estimate);
      this.bus.emitToUser(userId, 'searching', { estimated_wait_seconds: estimate, aiPartnerAvailable: true });
    }
    return claimed.length / 2;
  }

  /**
   * The user's last socket is gone while they search: the search goes on for the background
   * grace (a match is pushed to them). False when they were not searching, or the grace is 0.
   */
  async searchInBackground(userId: string): Promise<boolean> {
    if (!this.settings.backgroundGraceMs) return false;
    const replies = await this.redis
      .multi()
      .exists(redisKeys.searching(userId))
      .set(redisKeys.searchingInBackground(userId), '1', 'PX', this.settings.backgroundGraceMs)
      .exec();
    const searching = replies?.[0]?.[1] === 1;
    if (!searching) await this.redis.del(redisKeys.searchingInBackground(userId));
    return searching;
  }

  /** A socket of the user connected: their search (if any) is in the foreground again. */
  async backInForeground(userId: string): Promise<void> {
    await this.redis.del(redisKeys.searchingInBackground(userId));
  }

  /** Ends a search; true when there was one. */
  /** Takes a user out of matchmaking for good (a ban): their search ends, and their call ends for the partner. */
  async removeUser(userId: string): Promise<void> {
    await this.cancelSearch(userId);
    const roomId = await this.activeRoom(userId);
    if (roomId) await this.endRoom(roomId, userId, 'disconnected');
  }

  async cancelSearch(userId: string): Promise<boolean> {
    return (await this.redis.parleyCancelSearch(redisKeys.queuedAt, redisKeys.searchingOn, redisKeys.searchLevel, userId)) === 1;
  }

  /** Creates the room and the call, and tells both users (on whichever instance). */
  private async openRoom(
    roomId: string,
    waiting: { userId: string; instanceId: string },
    arriving: { userId: string; instanceId: string },
    level: QueueLevel,
    topic: string | null,
  ): Promise<LeaveOutcome | undefined> {
    const [waitingId, arrivingId] = [waiting.userId, arriving.userId];
    const now = this.clock.now();
    const pipeline = this.redis.multi();
    pipeline.sadd(redisKeys.room(roomId, 'users'), waitingId, arrivingId).expire(redisKeys.room(roomId, 'users'), this.roomTtlSeconds);
    // the instances let a partner left by a cancelled match search again as from its own
    pipeline
      .hset(redisKeys.room(roomId, 'meta'), {
        createdAt: now.toISOString(),
        topic: topic ?? '',
        level,
        userAId: waitingId,
        userBId: arrivingId,
        instanceA: waiting.instanceId,
        instanceB: arriving.instanceId,
      })
      .expire(redisKeys.room(roomId, 'meta'), this.roomTtlSeconds);
    await pipeline.exec();
    await this.calls.open({ roomId, userAId: waitingId, userBId: arrivingId, topic, level });
    const [cardA, cardB] = await Promise.all([this.profiles.matchCard(waitingId), this.profiles.matchCard(arrivingId)]);
    for (const [userId, partner] of [
      [waitingId, cardB],
      [arrivingId, cardA],
    ] as const) {
      this.bus.emitToUser(userId, 'match_found', { roomId, partner, iceServers: iceServersFor(userId, now, this.settings.turn) });
    }
    // a user whose app is in the background hears of the match by push
    const background = await this.redis.mget(redisKeys.searchingInBackground(waitingId), redisKeys.searchingInBackground(arrivingId));
    for (const [index, userId] of [waitingId, arrivingId].entries()) {
      if (!background[index]) continue;
      await this.redis.del(redisKeys.searchingInBackground(userId));
      const partner = userId === waitingId ? cardB : cardA;
      await this.events.publish('match.found', { userId, roomId, partnerName: partner.displayName });
    }
    // marks the room opened, and reads (in the same transaction) who asked to leave it meanwhile
    const replies = await this.redis.multi().set(redisKeys.room(roomId, 'ready'), '1', 'EX', this.roomTtlSeconds).get(redisKeys.room(roomId, 'left-by')).exec();
    const leftBy = replies?.[1]?.[1] as string | null | undefined;
    return leftBy ? this.leaveMatch(leftBy, roomId) : undefined;
  }

  async room(roomId: string): Promise<Room | null> {
    const users = await this.redis.smembers(redisKeys.room(roomId, 'users'));
    return users.length === 2 ? { roomId, users } : null;
  }

  /**
   * Records that `userId` joined the room's signaling: the first to join is the caller;
   * `joinedCount` counts this user; with both present, `tellPartner` says whether this
   * joiner sends the partner its receiver event (see JOIN_ROOM).
   */
  async join(roomId: string, userId: string): Promise<{ callerId: string; joinedCount: number; tellPartner: boolean }> {
    const key = (part: RoomPart) => redisKeys.room(roomId, part);
    const [callerId, joinedCount, tellPartner] = await this.redis.parleyJoinRoom(
      key('caller'),
      key('joined'),
      key('caller-told'),
      key('caller-owed'),
      userId,
      this.roomTtlSeconds,
    );
    return { callerId, joinedCount, tellPartner: tellPartner === 1 };
  }

  /** Called once the caller has been sent { role: "caller" }; true when its receiver event is owed to it. */
  async callerTold(roomId: string): Promise<boolean> {
    return (await this.redis.parleyCallerTold(redisKeys.room(roomId, 'caller-told'), redisKeys.room(roomId, 'caller-owed'), this.roomTtlSeconds)) === 1;
  }

  /**
   * Ends the call of a room once (whoever and whichever instance asks first), tells the
   * partner why, and removes the room.
   */
  async endRoom(roomId: string, endedByUserId: string | null, reason: 'ended' | 'disconnected' | 'timeout'): Promise<boolean> {
    const meta = await this.redis.hgetall(redisKeys.room(roomId, 'meta'));
    const endedBy: EndedBy = endedByUserId === meta.userAId ? 'user_a' : endedByUserId === meta.userBId ? 'user_b' : 'timeout';
    const closed = await this.calls.close(roomId, endedBy);
    const roomUsers = await this.redis.smembers(redisKeys.room(roomId, 'users'));
    // a room Redis already forgot still has its two users on the call row
    const users = roomUsers.length ? roomUsers : (closed?.userIds ?? []);
    await this.redis.del(...ROOM_PARTS.map((part) => redisKeys.room(roomId, part)));
    const [userA, userB] = users;
    if (userA && userB) await this.redis.parleyLeaveRoom(redisKeys.userRoom(userA), redisKeys.userRoom(userB), roomId);
    this.bus.closeCall(roomId);
    if (!closed) return false;
    for (const userId of users.filter((id) => id !== endedByUserId)) this.bus.emitToUser(userId, 'peer_left', { reason });
    this.logger.info({ roomId, reason, durationSeconds: closed.durationSeconds }, 'call ended');
    return true;
  }

  /**
   * Ends, with ended_by `timeout`, the calls that ran past CALL_MAX_DURATION (which also ends,
   * at the latest then, a call whose dropped user's grace timer died with its instance) and
   * the calls whose room Redis no longer has (expired or lost). Every instance may sweep at
   * once: a call still closes exactly once.
   */
  async endStaleCalls(): Promise<number> {
    const calls = await this.calls.openCalls(SWEEP_BATCH);
    if (!calls.length) return 0;
    const pipeline = this.redis.pipeline();
    for (const call of calls) pipeline.exists(redisKeys.room(call.roomId, 'meta'));
    const rooms = (await pipeline.exec()) ?? [];
    const now = this.clock.now().getTime();
    let ended = 0;
    for (const [index, call] of calls.entries()) {
      const overdue = now - call.startedAt.getTime() >= this.settings.maxCallMs;
      const forgotten = rooms[index]?.[1] === 0;
      if ((overdue || forgotten) && (await this.endRoom(call.roomId, null, 'timeout'))) ended += 1;
    }
    return ended;
  }
}
