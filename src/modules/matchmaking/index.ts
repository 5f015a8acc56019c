import type { Infra } from '../../infra/bundle.js';
import type { CallsService } from '../calls/index.js';
import { defineModule } from '../kit.js';
import type { UsersModuleService } from '../users/index.js';
import { registerMatchmakingGateway } from './gateway.js';
import { matchmakingJobs } from './jobs.js';
import { MatchmakingService, type MatchmakingSettings } from './service.js';

export type { MatchmakingService, QueueLevel, Room } from './service.js';
export { QUEUE_LEVELS } from './service.js';

export interface MatchmakingModuleSettings extends MatchmakingSettings {
  reconnectGraceMs: number;
  sweepIntervalMs: number;
}

/** Random-partner matching over Socket.io: queues per level, rooms, TURN credentials, the call's end. */
export const matchmakingModule = defineModule({
  name: 'matchmaking',
  entities: [],
  create: ({ infra, users, calls, settings }: { infra: Infra; users: UsersModuleService; calls: CallsService; settings: MatchmakingModuleSettings }) => {
    const matchmaking = new MatchmakingService(
      {
        redis: infra.redis.client,
        profiles: users.profiles,
        calls,
        bus: infra.realtime,
        events: infra.events,
        clock: infra.clock,
        ids: infra.ids,
        logger: infra.logger,
      },
      settings,
    );
    // A banned user leaves the queue, and their call ends for the partner.
    infra.events.on('user.banned', ({ userId }) => matchmaking.removeUser(userId));
    return {
      service: matchmaking,
      jobs: matchmakingJobs(matchmaking, { sweepIntervalMs: settings.sweepIntervalMs }),
      sockets: (io) =>
        registerMatchmakingGateway(io, {
          matchmaking,
          bus: infra.realtime,
          logger: infra.logger,
          searchTimeoutMs: settings.searchTimeoutMs,
          reconnectGraceMs: settings.reconnectGraceMs,
          backgroundGraceMs: settings.backgroundGraceMs,
          heartbeatIntervalMs: Math.max(100, Math.floor(settings.instanceTtlMs / 3)),
        }),
    };
  },
});
