import type { Infra } from '../../infra/bundle.js';
import type { AuditService } from '../audit/index.js';
import { defineModule } from '../kit.js';
import type { AccountsService } from '../users/index.js';
import { InviteKey } from './entities.js';
import { betaRoutes, type BetaRoutesOptions } from './routes.js';
import { BetaService } from './service.js';

export type { BetaService } from './service.js';

export interface BetaModuleDeps {
  infra: Infra;
  audit: AuditService;
  accounts: AccountsService;
  settings: BetaRoutesOptions['limits'];
}

/** Private beta: invite keys that admins hand out and registration consumes. */
export const betaModule = defineModule({
  name: 'beta',
  entities: [InviteKey],
  tags: [{ name: 'private beta', description: 'Invite keys' }],
  create: ({ infra, audit, accounts, settings }: BetaModuleDeps) => {
    const beta = new BetaService({ db: infra.db, clock: infra.clock, ids: infra.ids, audit, accounts });
    return { service: beta, http: async (app) => app.register(betaRoutes, { beta, limits: settings }) };
  },
});
