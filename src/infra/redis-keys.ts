/**
 * Every Redis key Parley uses, and the Socket.io rooms its Redis adapter turns into channels,
 * named in one place. Running instances share these names, and a rolling deploy runs two
 * versions at once: rename one only together with the keys already in flight.
 */

/** Prefixes the matchmaking keys share with the Lua scripts that build them inside Redis (see MATCH_KEYS_LUA). */
const MATCH = {
  searching: 'match:searching:',
  queue: 'match:queue:',
  instance: 'match:instance:',
  userRoom: 'match:user:',
  room: 'match:room:',
} as const;
const USER_ROOM_SUFFIX = ':room';

/** The keys of one matched room, `match:room:<roomId>:<part>`, kept CALL_MAX_DURATION + 10 min. */
export const ROOM_PARTS = ['users', 'meta', 'joined', 'caller', 'caller-told', 'caller-owed', 'ready', 'left-by'] as const;
export type RoomPart = (typeof ROOM_PARTS)[number];

export const redisKeys = {
  /** STRING "1", 72 h (how long Stripe retries): this provider's webhook event is in the inbox; the fast gate before the unique row. */
  webhookSeen: (provider: string, eventId: string) => `webhook:${provider}:${eventId}`,
  /** STRING: a signed-out device session whose access tokens fail until they would have expired (the deny-list). */
  deniedSession: (sessionId: string) => `auth:revoked-session:${sessionId}`,
  /** STRING counter: failed sign-ins of one account, by the SHA-256 of its lower-cased e-mail, per window. */
  loginFailures: (emailHash: string) => `auth:login-failures:${emailHash}`,
  /** STRING: the sealed pair a just-rotated refresh token (by its SHA-256) gets again within the reuse grace. */
  rotatedRefreshToken: (tokenHash: string) => `auth:rotated:${tokenHash}`,
  /** STRING (JSON), at most 5 min: a browser session by the SHA-256 of its cookie, so its check skips PostgreSQL. */
  cookieSession: (tokenHash: string) => `auth:cookie-session:${tokenHash}`,
  /** STRING (JSON), 10 min, taken once: a GitHub sign-in under way, by the SHA-256 of its state (its PKCE verifier, where it returns). */
  oauthState: (stateHash: string) => `auth:oauth-state:${stateHash}`,
  /** STRING, set NX: this user's last_active_at was written within the throttle period. */
  lastActiveThrottle: (userId: string) => `users:active:${userId}`,
  /** @fastify/rate-limit's namespace: its store appends the client's key. */
  rateLimitNamespace: 'parley:rate-limit:',
  /** STRING: until when (ms, injected clock) no other security event of this kind about this IP is written. */
  securityEventSampled: (kind: string, ip: string) => `security:sampled:${kind}:${ip}`,
  /** LIST of user ids waiting in one level's queue. */
  matchQueue: (level: string) => `${MATCH.queue}${level}`,
  /** STRING "1" while the user searches, with document 002's 5-minute TTL (or MATCH_SEARCH_TIMEOUT when longer). */
  searching: (userId: string) => `${MATCH.searching}${userId}`,
  /** HASH userId -> the queue level of their search, until it ends (matched, cancelled, timed out, its instance gone). */
  searchLevel: 'match:search-level',
  /** STRING, with the background grace as TTL: the searcher's sockets are all gone (the app in the background); a match is pushed to them. */
  searchingInBackground: (userId: string) => `match:background:${userId}`,
  /** HASH userId -> when they joined the queue (ms), for the wait estimate. */
  queuedAt: 'match:queued-at',
  /** ZSET userId -> when (ms, the injected clock) their search has waited MATCH_AI_FALLBACK_SECONDS: the AI partner is offered then, if it still runs. */
  aiPartnerDue: 'match:ai-partner-due',
  /** HASH userId -> the instance holding the searcher's socket. */
  searchingOn: 'match:searching-on',
  /** STRING per live instance, refreshed well within its TTL: a searcher whose instance's key is gone is a ghost. */
  instanceHeartbeat: (instanceId: string) => `${MATCH.instance}${instanceId}`,
  /** STRING: the room the user is matched into. */
  userRoom: (userId: string) => `${MATCH.userRoom}${userId}${USER_ROOM_SUFFIX}`,
  room: (roomId: string, part: RoomPart) => `${MATCH.room}${roomId}:${part}`,
  /** STRING: a moving average of recent waits in one level's queue, in seconds. */
  waitEstimate: (level: string) => `match:stats:wait:${level}`,
} as const;

/**
 * The same builders as Lua functions, for the scripts that name keys by ids they read inside
 * Redis (a queued user, a user's room): prepend it to such a script.
 */
export const MATCH_KEYS_LUA = `
local function searchingKey(userId) return '${MATCH.searching}' .. userId end
local function matchQueueKey(level) return '${MATCH.queue}' .. level end
local function instanceHeartbeatKey(instanceId) return '${MATCH.instance}' .. instanceId end
local function userRoomKey(userId) return '${MATCH.userRoom}' .. userId .. '${USER_ROOM_SUFFIX}' end
local function roomKey(roomId, part) return '${MATCH.room}' .. roomId .. ':' .. part end
`;

/**
 * Socket.io rooms. With a real Redis the adapter relays each over a Redis channel named from
 * REALTIME_CHANNEL_PREFIX and the room (the sharded adapter: one channel per room).
 */
export const socketRooms = {
  /** Every socket of the user, on any instance. */
  user: (userId: string) => `user:${userId}`,
  /** Every socket of one device session (closed when it is signed out). */
  session: (sessionId: string) => `session:${sessionId}`,
  /** The one socket per user taking part in a call. */
  call: (roomId: string) => `call:${roomId}`,
} as const;
