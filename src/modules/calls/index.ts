import type { Infra } from '../../infra/bundle.js';
import type { UsersModuleService } from '../users/index.js';
import { defineModule } from '../kit.js';
import { Call, CallRating } from './entities.js';
import { callsRoutes } from './routes.js';
import { CallsService } from './service.js';

export type { CallsService, CallView, EndedBy } from './service.js';

/** Call history: calls opened at match, closed exactly once, rated by each participant. */
export const callsModule = defineModule({
  name: 'calls',
  entities: [Call, CallRating],
  tags: [{ name: 'calls', description: 'Call history and ratings' }],
  create: ({ infra, users }: { infra: Infra; users: UsersModuleService }) => {
    const calls = new CallsService(infra.db, users.profiles, infra.clock, infra.ids, infra.events);
    return { service: calls, http: async (app) => app.register(callsRoutes, { calls }) };
  },
});
