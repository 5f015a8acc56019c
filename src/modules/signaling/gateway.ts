import { z } from 'zod';
import type { Server, Socket } from 'socket.io';
import type { Logger } from '../../infra/logger.js';
import type { RealtimeBus } from '../../infra/realtime.js';
import type { SocketData } from '../../shared/socket-auth.js';
import { emitError } from '../../shared/socket-errors.js';
import type { MatchmakingService } from '../matchmaking/index.js';

const roomId = z.uuid();
const sdp = z.string().min(1).max(20_000);
const schemas = {
  join_room: z.strictObject({ roomId }),
  webrtc_offer: z.strictObject({ roomId, sdp }),
  webrtc_answer: z.strictObject({ roomId, sdp }),
  webrtc_ice: z.strictObject({
    roomId,
    candidate: z.strictObject({
      candidate: z.string().max(1_000),
      sdpMid: z.string().max(64).nullable().optional(),
      sdpMLineIndex: z.number().int().min(0).max(64).nullable().optional(),
      usernameFragment: z.string().max(256).nullable().optional(),
    }),
  }),
  end_call: z.strictObject({ roomId }),
};

/**
 * WebRTC signaling (module 05): a relay between the two members of a room. Every event
 * checks that the sender is a member; nothing reaches anyone else.
 *
 * Membership is read from Redis once per socket and call; the socket then holds it as its
 * place in the call's Socket.io room, which ending the call (end_call, disconnect, ban, or
 * the timeout sweep, which also ends calls whose room Redis forgot) takes away on every
 * instance.
 * So offers, answers and ICE candidates are checked and relayed without a Redis round trip.
 */
export function registerSignalingGateway(
  io: Server,
  { matchmaking, bus, logger }: { matchmaking: MatchmakingService; bus: RealtimeBus; logger: Logger },
): void {
  io.on('connection', (socket: Socket) => {
    const { userId } = (socket.data as SocketData).auth;
    /** The partner in each call this socket proved it belongs to. */
    const partners = new Map<string, string>();

    const fail = (event: string) => (error: unknown) => {
      logger.error({ err: error, event, userId }, 'signaling event failed');
      emitError(socket, 'internal_error', 'Something went wrong; try again');
    };

    /** Runs a handler that may be synchronous (the relays) or not, reporting either failure. */
    const run = (event: string, work: () => Promise<void> | void) => {
      try {
        void work()?.catch(fail(event));
      } catch (error) {
        fail(event)(error);
      }
    };

    const knownPartner = (roomId: string): string | undefined => (bus.inCall(socket, roomId) ? partners.get(roomId) : undefined);

    const provePartner = async (roomId: string): Promise<string | null> => {
      const room = await matchmaking.room(roomId);
      if (!room?.users.includes(userId)) return null;
      const partnerId = room.users.find((id) => id !== userId)!;
      // forget the calls this socket has left, so a long-lived socket does not collect them
      for (const id of partners.keys()) if (!bus.inCall(socket, id)) partners.delete(id);
      partners.set(roomId, partnerId);
      bus.joinCall(socket, roomId, userId);
      return partnerId;
    };

    function on<E extends keyof typeof schemas>(event: E, handle: (payload: z.infer<(typeof schemas)[E]>, partnerId: string) => Promise<void> | void) {
      socket.on(String(event), (raw: unknown) => {
        const parsed = schemas[event].safeParse(raw);
        if (!parsed.success)
          return emitError(socket, 'validation_failed', `Invalid ${event} payload`, {
            fields: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
          });
        const payload = parsed.data as z.infer<(typeof schemas)[E]>;
        const partnerId = knownPartner(payload.roomId);
        if (partnerId) return run(event, () => handle(payload, partnerId));
        provePartner(payload.roomId)
          .then((proven) => (proven ? run(event, () => handle(payload, proven)) : emitError(socket, 'not_in_room', 'You are not a member of this room')))
          .catch(fail(event));
      });
    }

    on('join_room', async ({ roomId: id }, partnerId) => {
      const { callerId, joinedCount, tellPartner } = await matchmaking.join(id, userId);
      const roleOf = (user: string) => (user === callerId ? 'caller' : 'receiver');
      if (joinedCount < 2) {
        socket.emit('peer_joined', { role: roleOf(userId), yourRole: roleOf(userId) });
        // only now may the partner's join tell this socket "receiver" (see matchmaking's JOIN_ROOM)
        if (await matchmaking.callerTold(id)) bus.emitToUser(userId, 'peer_joined', { role: 'receiver', yourRole: roleOf(userId) });
        return;
      }
      // As module 05 gives it: with both present, both hear peer_joined { role: "receiver" };
      // yourRole tells each which side of the offer it is.
      bus.emitToUser(userId, 'peer_joined', { role: 'receiver', yourRole: roleOf(userId) });
      if (tellPartner) bus.emitToUser(partnerId, 'peer_joined', { role: 'receiver', yourRole: roleOf(partnerId) });
    });
    on('webrtc_offer', ({ roomId: id, sdp: offer }, partnerId) => bus.relayInCall(socket, id, partnerId, 'webrtc_offer', { sdp: offer }));
    on('webrtc_answer', ({ roomId: id, sdp: answer }, partnerId) => bus.relayInCall(socket, id, partnerId, 'webrtc_answer', { sdp: answer }));
    on('webrtc_ice', ({ roomId: id, candidate }, partnerId) => bus.relayInCall(socket, id, partnerId, 'webrtc_ice', { candidate }));
    on('end_call', async ({ roomId: id }) => {
      await matchmaking.endRoom(id, userId, 'ended');
    });
  });
}
