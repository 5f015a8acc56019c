import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import type { IdGenerator } from '../../infra/ids.js';
import type { Logger } from '../../infra/logger.js';
import type { PrincipalVerifier } from '../../shared/auth.js';
import { AppError, type ErrorCode, type ErrorDetails } from '../../shared/errors.js';
import type { AccountGate } from '../../shared/socket-auth.js';
import type { ActivityEntry } from '../audit/index.js';
import { replyFrame } from './routes.js';
import { anonymousSessionIdSchema, chatClientFrameSchema, type ChatClientFrame } from './schemas.js';
import { anonymousKey, type ChatOwner, type ChatService, type ReplyHandle } from './service.js';
import { scanForThreats, type ThreatMatch } from './threats.js';
import type { ChatSocketLimits, ConnectionAdmission, Refusal, Sender } from './ws-limits.js';

export interface ChatSocketSettings {
  maxMessageChars: number;
  authTimeoutMs: number;
  pingIntervalMs: number;
  /** SECURITY_BLOCK_SUSPICIOUS: refuse messages that look like attacks, rather than only log them. */
  blockSuspicious: boolean;
}

/** What the gateway knows of a connection from its upgrade request. */
export interface ConnectionRequest {
  id: string;
  ip: string;
  userAgent: string | undefined;
  /** The `Authorization` header, if any. */
  authorization: string | undefined;
  /** The `x-session-id` header (an anonymous session to resume), if any. */
  sessionId: string | undefined;
}

/** Close codes (RFC 6455 §7.4.1). */
const CLOSE = { goingAway: 1001, policyViolation: 1008, tryAgainLater: 1013 } as const;

/** Frames any connection may send, refilled per second, before it is told to slow down: a person types far slower. */
const FRAME_BURST = 30;
const FRAMES_PER_SECOND = 10;
/** At most one security event per IP and kind of attack in this long: a flood cannot fill the activity log. */
const SECURITY_EVENT_INTERVAL_MS = 60_000;
/** Shutdown: a client that does not answer the close frame within this long is cut. */
const CLOSE_GRACE_MS = 2_000;
/** The access-token failures: at sign-in they count toward blocking the IP; on a signed-in connection they end its sign-in. */
const AUTH_FAILURES: ReadonlySet<ErrorCode> = new Set([
  'unauthorized',
  'invalid_token',
  'token_expired',
  'session_revoked',
  'account_banned',
  'not_authorized_user',
]);

/** A signed-in connection keeps its access token: each message checks it again (expired, signed out, banned). */
type Identity = { userId: string; token: string } | { anonymousId: string };

const senderOf = (identity: Identity): Sender => ('userId' in identity ? { userId: identity.userId } : { anonymousKey: anonymousKey(identity.anonymousId) });
const ownerOf = (identity: Identity): ChatOwner => ('userId' in identity ? { userId: identity.userId } : { anonymousId: identity.anonymousId });

/** Where activity-log entries go (the audit module's service). */
interface ActivityLog {
  record(entry: ActivityEntry): Promise<void>;
}

interface GatewayDependencies {
  chat: ChatService;
  limits: ChatSocketLimits;
  /** Parley's access tokens, and a trusted issuer's with ACCEPT_EXTERNAL_TOKENS=on (single-user mode applies to both). */
  verifier: PrincipalVerifier;
  accounts: AccountGate;
  audit: ActivityLog;
  ids: IdGenerator;
  logger: Logger;
  /** Aborts as the server begins to stop (after the replies are stopped). */
  closing: AbortSignal;
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/**
 * Document 004's WebSocket chat: JSON frames in both directions, the same replies as the SSE
 * route (ChatService, frames from replyFrame). A connection authenticates with an access token
 * or as an anonymous session (which may sign in later and keep its conversations); limits
 * live in Redis (ChatSocketLimits); the server pings and drops connections that stop
 * answering; messages that look like attacks are written to the activity log.
 */
export class ChatSocketGateway {
  private readonly connections = new Set<ChatConnection>();
  private readonly frames: ReturnType<typeof chatClientFrameSchema>;
  private keepalive: NodeJS.Timeout | undefined;

  constructor(
    readonly dependencies: GatewayDependencies,
    readonly settings: ChatSocketSettings,
  ) {
    this.frames = chatClientFrameSchema(settings.maxMessageChars);
  }

  /** Before the upgrade: may this IP open a connection now? Admitted, it has an id and counts as open until `accept`'s socket closes. */
  async admit(ip: string): Promise<{ admitted: true; id: string } | Extract<ConnectionAdmission, { admitted: false }>> {
    const id = this.dependencies.ids.uuid();
    const admission = await this.dependencies.limits.admitConnection(ip, id);
    return admission.admitted ? { ...admission, id } : admission;
  }

  /** An admitted connection, upgraded. */
  accept(socket: WebSocket, request: ConnectionRequest): void {
    const connection = new ChatConnection(socket, request, this, this.frames);
    this.connections.add(connection);
    socket.once('close', () => {
      this.connections.delete(connection);
      this.dependencies.limits
        .closed(request.id)
        .catch((error: unknown) => this.dependencies.logger.warn({ err: error }, 'could not count a /ws connection as closed'));
    });
    this.keepalive ??= setInterval(() => this.ping(), this.settings.pingIntervalMs).unref();
    connection.start();
  }

  /** Drops the connections that did not answer the last ping, pings the others, and keeps them counted as open. */
  private ping(): void {
    const open: string[] = [];
    for (const connection of this.connections) {
      if (connection.ping()) open.push(connection.id);
    }
    this.dependencies.limits
      .keepOpen(open)
      .catch((error: unknown) => this.dependencies.logger.warn({ err: error }, 'could not refresh the open /ws connections'));
  }

  /** Shutdown: every connection gets a close frame (1001); one that does not answer within a short grace is cut. */
  async close(): Promise<void> {
    clearInterval(this.keepalive);
    await Promise.all([...this.connections].map((connection) => connection.goAway()));
  }

  /** Writes an activity-log entry; a failure to write is logged, never the connection's problem. */
  async record(entry: ActivityEntry): Promise<void> {
    await this.dependencies.audit
      .record(entry)
      .catch((error: unknown) => this.dependencies.logger.error({ err: error, type: entry.type }, 'could not write an activity entry'));
  }
}

/** One /ws client: its identity, the reply it is following, and its frames, handled one at a time. */
class ChatConnection {
  private identity: Identity | null = null;
  /** The reply being relayed to this client (one at a time). */
  private relaying: Promise<void> | null = null;
  private readonly gone = new AbortController();
  private queue: Promise<void> = Promise.resolve();
  private authTimer: NodeJS.Timeout | undefined;
  private answeredPing = true;
  private frameTokens = FRAME_BURST;
  private refilledAt = performance.now();
  private refusedFrames = 0;
  private toldSlowDownAt = -Infinity;

  constructor(
    private readonly socket: WebSocket,
    private readonly request: ConnectionRequest,
    private readonly gateway: ChatSocketGateway,
    private readonly frames: ReturnType<typeof chatClientFrameSchema>,
  ) {}

  get id(): string {
    return this.request.id;
  }

  private get dependencies(): GatewayDependencies {
    return this.gateway.dependencies;
  }

  start(): void {
    const { socket, request } = this;
    socket.on('pong', () => (this.answeredPing = true));
    socket.on('message', (data, isBinary) => {
      if (!this.takeFrameToken()) return;
      this.queue = this.queue.then(() => this.handle(data, isBinary)).catch((error: unknown) => this.fail(error));
    });
    socket.once('close', () => {
      clearTimeout(this.authTimer);
      this.gone.abort();
    });
    this.authTimer = setTimeout(() => {
      if (this.identity) return;
      this.sendError('unauthorized', 'Authenticate right after connecting: this connection waited too long');
      this.close(CLOSE.policyViolation, 'authentication timeout');
    }, this.gateway.settings.authTimeoutMs).unref();
    // document 004's headers authenticate at once; otherwise the client sends an authenticate frame
    if (request.authorization !== undefined || request.sessionId !== undefined) {
      this.queue = this.queue.then(() => this.authenticateFromHeaders()).catch((error: unknown) => this.fail(error));
    }
  }

  /** Called on every keepalive tick: false (and the connection is cut) when the last ping got no pong. */
  ping(): boolean {
    if (!this.answeredPing) {
      this.socket.terminate();
      return false;
    }
    this.answeredPing = false;
    this.socket.ping();
    return true;
  }

  async goAway(): Promise<void> {
    if (this.socket.readyState === this.socket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.close(CLOSE.goingAway, 'server shutting down');
    const grace = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    await closed;
    clearTimeout(grace);
  }

  private close(code: number, reason: string): void {
    this.gone.abort();
    this.socket.close(code, reason);
  }

  private send(frame: Record<string, unknown>): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  private sendError(code: ErrorCode, message: string, details?: ErrorDetails): void {
    this.send({ type: 'error', code, message, ...(details ? { details } : {}) });
  }

  private fail(error: unknown): void {
    if (error instanceof AppError) return this.sendError(error.code, error.message, error.details);
    this.dependencies.logger.error({ err: error, connectionId: this.id }, 'a /ws frame failed');
    this.sendError('internal_error', 'Something went wrong on our side; try again');
  }

  /** A token bucket over every frame: beyond it frames are dropped (the client told once a second), and a client that keeps on is cut. */
  private takeFrameToken(): boolean {
    const now = performance.now();
    this.frameTokens = Math.min(FRAME_BURST, this.frameTokens + ((now - this.refilledAt) / 1000) * FRAMES_PER_SECOND);
    this.refilledAt = now;
    if (this.frameTokens >= 1) {
      this.frameTokens -= 1;
      this.refusedFrames = 0;
      return true;
    }
    this.refusedFrames += 1;
    if (this.refusedFrames > FRAME_BURST) {
      this.close(CLOSE.policyViolation, 'too many frames');
    } else if (now - this.toldSlowDownAt >= 1000) {
      this.toldSlowDownAt = now;
      this.sendError('rate_limited', 'Too many frames; slow down', { retryAfterSeconds: 1, limit: 'frames' });
    }
    return false;
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    if (this.gone.signal.aborted) return;
    if (isBinary) return this.sendError('validation_failed', 'Frames are JSON text, not binary');
    let value: unknown;
    try {
      value = JSON.parse(text(data));
    } catch {
      return this.sendError('invalid_json', 'A frame must be one JSON object');
    }
    const parsed = this.frames.safeParse(value);
    if (!parsed.success) {
      return this.sendError('validation_failed', 'Invalid frame', {
        fields: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
      });
    }
    const frame: ChatClientFrame = parsed.data;
    switch (frame.type) {
      case 'authenticate':
        return frame.token === undefined ? this.startAnonymous(frame.sessionId) : this.signIn(frame.token, frame.sessionId, 'frame');
      case 'message':
        return this.message(frame.content, frame.chatId);
      case 'ping':
        return this.send({ type: 'pong' });
    }
  }

  private async authenticateFromHeaders(): Promise<void> {
    const { authorization, sessionId } = this.request;
    const session = sessionId === undefined ? undefined : anonymousSessionIdSchema.safeParse(sessionId);
    if (session && !session.success) {
      return this.sendError('validation_failed', 'Invalid x-session-id header', {
        fields: session.error.issues.map((issue) => ({ path: 'x-session-id', message: issue.message })),
      });
    }
    if (authorization === undefined) return this.startAnonymous(session?.data);
    const [scheme, token] = authorization.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) {
      await this.authenticationFailed(new AppError('invalid_token', 'Authorization must be "Bearer <access token>"'), null, 'header');
      return;
    }
    await this.signIn(token, session?.data, 'header');
  }

  /**
   * Signs the connection in; an anonymous session it was (or names) becomes the user's,
   * conversations and all. A signed-in connection may send a fresh token of the same user
   * (its access token expired), not another user's.
   */
  private async signIn(token: string, sessionId: string | undefined, via: 'frame' | 'header'): Promise<void> {
    const { verifier, accounts, limits, chat } = this.dependencies;
    let userId: string;
    try {
      userId = (await verifier.verifyPrincipal(token)).userId;
    } catch (error) {
      if (error instanceof AppError && AUTH_FAILURES.has(error.code)) return this.authenticationFailed(error, null, via);
      throw error;
    }
    if (!(await accounts.isActive(userId)))
      return this.authenticationFailed(new AppError('account_banned', 'This account cannot use the AI partner'), userId, via);
    if (this.identity && 'userId' in this.identity) {
      if (this.identity.userId !== userId) throw new AppError('already_authenticated', 'This connection is signed in as another user');
      this.identity = { userId, token };
      return this.send({ type: 'authenticated', userId, claimedChats: 0 });
    }
    if (await this.refuseSession(await limits.admitUser(userId))) return;
    const anonymous = new Set([...(this.identity ? [this.identity.anonymousId] : []), ...(sessionId ? [sessionId] : [])]);
    let claimedChats = 0;
    for (const anonymousId of anonymous) claimedChats += await chat.claimAnonymous(anonymousId, userId);
    this.identity = { userId, token };
    clearTimeout(this.authTimer);
    this.send({ type: 'authenticated', userId, claimedChats });
  }

  /** An anonymous session: the one the client names (it resumes it), or a new one with an unguessable id. */
  private async startAnonymous(sessionId: string | undefined): Promise<void> {
    if (this.identity) throw new AppError('already_authenticated', 'This connection is authenticated already');
    if (await this.refuseSession(await this.dependencies.limits.admitAnonymous(this.request.ip))) return;
    const anonymousId = sessionId ?? randomBytes(32).toString('base64url');
    this.identity = { anonymousId };
    clearTimeout(this.authTimer);
    this.send({ type: 'authenticated', anonymous: true, sessionId: anonymousId });
  }

  /** Over its connection limit: told, then closed (try again later). */
  private async refuseSession(refusal: Refusal | null): Promise<boolean> {
    if (!refusal) return false;
    const retryAfterSeconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
    this.sendError('rate_limited', `Too many connections, retry in ${retryAfterSeconds} s`, { retryAfterSeconds, limit: refusal.limit });
    this.close(CLOSE.tryAgainLater, 'too many connections');
    return true;
  }

  /** A failed authentication: counted toward the IP's block, logged, then told; the IP it blocks is closed out. */
  private async authenticationFailed(error: AppError, userId: string | null, via: 'frame' | 'header'): Promise<void> {
    const { limits } = this.dependencies;
    const { ip, userAgent } = this.request;
    const blocked = await limits.authFailed(ip);
    await this.gateway.record({ type: 'ws_auth_failed', userId, ip, userAgent, metadata: { code: error.code, via } });
    this.sendError(error.code, error.message);
    if (!blocked) return;
    const retryAfterSeconds = Math.ceil(limits.authBlockMs / 1000);
    await this.gateway.record({ type: 'ws_ip_blocked', userId, ip, userAgent, metadata: { blockedForSeconds: retryAfterSeconds } });
    this.sendError('ip_blocked', `Too many failed authentications from this address; retry in ${retryAfterSeconds} s`, { retryAfterSeconds });
    this.close(CLOSE.policyViolation, 'too many failed authentications');
  }

  private async message(content: string, chatId: string | undefined): Promise<void> {
    const { limits, chat, closing } = this.dependencies;
    const identity = this.identity;
    if (!identity)
      throw new AppError('unauthorized', 'Authenticate first: send { "type": "authenticate", "token" } or { "type": "authenticate", "anonymous": true }');
    if (this.relaying) throw new AppError('reply_in_progress', 'The partner is still answering: wait for its done (or error) frame, then write again');
    if (closing.aborted) throw new AppError('shutting_down', 'This server is shutting down; reconnect and send the message again');
    if ('userId' in identity && !(await this.stillSignedIn(identity.token))) return;
    const refusal = await limits.admitMessage(senderOf(identity), this.request.ip);
    if (refusal) {
      const retryAfterSeconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
      throw new AppError('rate_limited', `Too many messages, retry in ${retryAfterSeconds} s`, { retryAfterSeconds, limit: refusal.limit });
    }
    const threat = scanForThreats(content);
    if (threat) {
      await this.reportThreat(threat, identity, chatId);
      if (this.gateway.settings.blockSuspicious)
        throw new AppError('suspicious_content', 'This message looks like an attack and was not sent', { kinds: threat.kinds });
    }
    const handle = await chat.startReply(ownerOf(identity), { threadId: chatId, content });
    this.send({ type: 'start', chatId: handle.thread.id, userMessageId: handle.userMessage.id, messageId: handle.replyId, chat: handle.thread });
    const relaying = this.relay(handle);
    this.relaying = relaying;
    void relaying.finally(() => {
      if (this.relaying === relaying) this.relaying = null;
    });
  }

  /**
   * The connection's access token, checked again: expired, the client is told to send a fresh
   * one; signed out or banned, the connection ends.
   */
  private async stillSignedIn(token: string): Promise<boolean> {
    try {
      await this.dependencies.verifier.verifyPrincipal(token);
      return true;
    } catch (error) {
      if (!(error instanceof AppError) || !AUTH_FAILURES.has(error.code)) throw error;
      if (error.code === 'token_expired') {
        this.sendError('token_expired', 'The access token has expired: send { "type": "authenticate", "token" } with a fresh one, then the message again');
        return false;
      }
      this.sendError(error.code, error.message);
      this.close(CLOSE.policyViolation, 'signed out');
      return false;
    }
  }

  /** The reply's events, as frames, until its last one (or the client leaves: the reply goes on and is saved). */
  private async relay(handle: ReplyHandle): Promise<void> {
    try {
      for await (const event of handle.events(0, this.gone.signal)) this.send(replyFrame(event));
    } catch (error) {
      if (this.gone.signal.aborted) return;
      this.dependencies.logger.error({ err: error, replyId: handle.replyId }, 'could not relay a reply over /ws');
      this.sendError('internal_error', 'The reply could not be followed; it is saved when complete');
    }
  }

  /** One security event per IP and kind of attack a minute: which patterns, never the text. */
  private async reportThreat(threat: ThreatMatch, identity: Identity, chatId: string | undefined): Promise<void> {
    const { ip, userAgent } = this.request;
    const sampled = await Promise.all(threat.kinds.map((kind) => this.dependencies.limits.sample(`suspicious:${kind}`, ip, SECURITY_EVENT_INTERVAL_MS)));
    if (!sampled.some(Boolean)) return;
    await this.gateway.record({
      type: 'security_suspicious_content',
      userId: 'userId' in identity ? identity.userId : null,
      ip,
      userAgent,
      metadata: {
        kinds: threat.kinds,
        patterns: threat.patterns,
        blocked: this.gateway.settings.blockSuspicious,
        ...('anonymousId' in identity ? { anonymousSession: anonymousKey(identity.anonymousId).slice(0, 16) } : {}),
        ...(chatId ? { chatId } : {}),
      },
    });
  }
}
