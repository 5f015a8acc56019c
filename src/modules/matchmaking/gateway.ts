import { z } from 'zod';
import type { Server, Socket } from 'socket.io';
import type { Logger } from '../../infra/logger.js';
import type { RealtimeBus } from '../../infra/realtime.js';
import { socketRooms } from '../../infra/redis-keys.js';
import type { SocketData } from '../../shared/socket-auth.js';
import { emitError } from '../../shared/socket-errors.js';
import { QUEUE_LEVELS, type LeaveOutcome, type MatchmakingService } from './service.js';

const findPartnerSchema = z.strictObject({ level: z.enum(QUEUE_LEVELS).optional(), topic: z.string().trim().min(1).max(80).optional() }).optional();

export interface MatchmakingGatewayOptions {
  matchmaking: MatchmakingService;
  bus: RealtimeBus;
  logger: Logger;
  searchTimeoutMs: number;
  reconnectGraceMs: number;
  /** How long a search outlives its user's last socket (see MatchmakingService.searchInBackground). */
  backgroundGraceMs: number;
  /** How often this instance refreshes its heartbeat (a third of MATCH_INSTANCE_TTL). */
  heartbeatIntervalMs: number;
}

type Ack = ((reply: unknown) => void) | undefined;

/**
 * find_partner / cancel_search, the search timeout, what a lost connection ends, and this
 * instance's heartbeat (calls past their time are ended by a job, see jobs.ts). Returns
 * what stops it all on shutdown: the timers, and the searches of this instance's sockets.
 */
export function registerMatchmakingGateway(
  io: Server,
  { matchmaking, bus, logger, searchTimeoutMs, reconnectGraceMs, backgroundGraceMs, heartbeatIntervalMs }: MatchmakingGatewayOptions,
): () => Promise<void> {
  const searchTimers = new Map<string, NodeJS.Timeout>();
  const graceTimers = new Set<NodeJS.Timeout>();
  /** Once shutting down, disconnects start nothing: the users reconnect to another instance. */
  let stopping = false;
  const beat = () => void matchmaking.heartbeat().catch((error: unknown) => logger.warn({ err: error }, 'could not refresh the instance heartbeat'));
  beat();
  const heartbeat = setInterval(beat, heartbeatIntervalMs);
  heartbeat.unref();

  const clearSearchTimer = (userId: string) => {
    clearTimeout(searchTimers.get(userId));
    searchTimers.delete(userId);
  };
  const startSearchTimer = (userId: string) => {
    clearSearchTimer(userId);
    searchTimers.set(
      userId,
      setTimeout(() => {
        searchTimers.delete(userId);
        matchmaking
          .cancelSearch(userId)
          .then((ended) => ended && bus.emitToUser(userId, 'search_timeout', { reason: 'no partner found in time' }))
          .catch((error: unknown) => logger.error({ err: error, userId }, 'ending a search past its time failed'));
      }, searchTimeoutMs),
    );
  };
  /** A partner whose match was cancelled searches again: its search gets the usual time limit. */
  const afterLeave = (left: LeaveOutcome): void => {
    if (left.status !== 'left' || !left.partner) return;
    const again = left.partner.outcome;
    if (again.status === 'queued') startSearchTimer(left.partner.userId);
    else if (again.status === 'matched' && again.left) afterLeave(again.left);
  };

  io.on('connection', (socket: Socket) => {
    const { userId, sessionId } = (socket.data as SocketData).auth;
    void socket.join([socketRooms.user(userId), socketRooms.session(sessionId)]);
    void matchmaking.backInForeground(userId).catch((error: unknown) => logger.warn({ err: error, userId }, 'could not bring a search back to the foreground'));

    const guard = (work: () => Promise<void>) =>
      work().catch((error: unknown) => {
        logger.error({ err: error, userId }, 'matchmaking event failed');
        emitError(socket, 'internal_error', 'Something went wrong; try again');
      });

    socket.on('find_partner', (payload: unknown, ack: Ack) =>
      guard(async () => {
        const parsed = findPartnerSchema.safeParse(typeof payload === 'function' ? undefined : payload);
        if (!parsed.success)
          return emitError(socket, 'validation_failed', 'Invalid find_partner payload', {
            fields: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
          });
        const outcome = await matchmaking.findPartner(userId, parsed.data ?? {});
        if (outcome.status === 'rejected') {
          emitError(socket, outcome.code, outcome.message, outcome.missing ? { missing: outcome.missing } : undefined);
        } else if (outcome.status === 'queued') {
          // true only once the search has waited MATCH_AI_FALLBACK_SECONDS (MatchmakingService.offerAiPartner)
          socket.emit('searching', { estimated_wait_seconds: outcome.estimatedWaitSeconds, aiPartnerAvailable: false });
          startSearchTimer(userId);
        } else if (outcome.left) {
          afterLeave(outcome.left);
        }
        if (typeof ack === 'function') ack({ status: outcome.status });
      }),
    );

    socket.on('cancel_search', (ack: Ack) =>
      guard(async () => {
        clearSearchTimer(userId);
        // matched but not yet in the room: cancelling leaves the match (partner_cancelled)
        const left = (await matchmaking.cancelSearch(userId)) ? null : await matchmaking.leaveMatch(userId);
        if (left) afterLeave(left);
        if (typeof ack === 'function') ack({ cancelled: !left || left.status === 'left' });
      }),
    );

    /** A short network drop must not end the call: the user may come back and rejoin. */
    const leaveRoomAfterGrace = (roomId: string) => {
      const timer = setTimeout(() => {
        graceTimers.delete(timer);
        void guard(async () => {
          if (await bus.isOnline(userId)) return;
          const left = await matchmaking.leaveMatch(userId, roomId);
          if (left.status === 'joined') await matchmaking.endRoom(roomId, userId, 'disconnected');
          else afterLeave(left);
        });
      }, reconnectGraceMs);
      graceTimers.add(timer);
    };

    socket.on('disconnect', () =>
      guard(async () => {
        if (stopping) return;
        if (await bus.isOnline(userId)) return; // another tab or device of this user is still here
        // The app may only be in the background: its search goes on a while (a match is pushed to it).
        const searching = await matchmaking.searchInBackground(userId);
        if (!searching) {
          clearSearchTimer(userId);
          await matchmaking.cancelSearch(userId);
        }
        const roomId = await matchmaking.activeRoom(userId);
        if (roomId) leaveRoomAfterGrace(roomId);
        else if (searching) {
          const timer = setTimeout(() => {
            graceTimers.delete(timer);
            void guard(async () => {
              if (await bus.isOnline(userId)) return;
              if (await matchmaking.cancelSearch(userId)) return clearSearchTimer(userId);
              // matched meanwhile: the push told them; they have the usual grace to join
              const matchedRoom = await matchmaking.activeRoom(userId);
              if (matchedRoom) leaveRoomAfterGrace(matchedRoom);
            });
          }, backgroundGraceMs);
          graceTimers.add(timer);
        }
      }),
    );
  });

  return async () => {
    stopping = true;
    clearInterval(heartbeat);
    for (const timer of [...searchTimers.values(), ...graceTimers]) clearTimeout(timer);
    const ended = await matchmaking.retire();
    if (ended.length) logger.info({ searches: ended.length }, 'ended the searches of this instance');
  };
}
