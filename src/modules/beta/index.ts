import type { Infra } from '../../infra/bundle.js';
import type { AuditService } from '../audit/index.js';
import { defineModule } from '../kit.js';
import { InviteKey } from './entities.js';
import { betaRoutes } from './routes.js';
import { BetaService } from './service.js';

export type { BetaService } from './service.js';

/** Private beta: invite keys that admins hand out and registration consumes. */
export const betaModule = defineModule({
  name: 'beta',
  entities: [InviteKey],
  tags: [{ name: 'private beta', description: 'Invite keys' }],
  create: ({ infra, audit }: { infra: Infra; audit: AuditService }) => {
    const beta = new BetaService(infra.db, infra.clock, infra.ids, audit);
    return { service: beta, http: async (app) => app.register(betaRoutes, { beta }) };
  },
});
