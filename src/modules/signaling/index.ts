import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import type { MatchmakingService } from '../matchmaking/index.js';
import { registerSignalingGateway } from './gateway.js';

/** WebRTC signaling between the two members of a call: offers, answers, ICE candidates, relayed as is. */
export const signalingModule = defineModule({
  name: 'signaling',
  entities: [],
  create: ({ infra, matchmaking }: { infra: Infra; matchmaking: MatchmakingService }) => ({
    service: undefined,
    sockets: (io) => {
      registerSignalingGateway(io, { matchmaking, bus: infra.realtime, logger: infra.logger });
      return async () => undefined;
    },
  }),
});
