import type { Infra } from '../../infra/bundle.js';
import type { SigningKeys } from '../../infra/keys.js';
import type { PasswordHasher } from '../../infra/passwords.js';
import { createPreparedReader } from '../../infra/sql.js';
import type { AuditService } from '../audit/index.js';
import type { BetaService } from '../beta/index.js';
import { defineModule } from '../kit.js';
import type { UsersModuleService } from '../users/index.js';
import { DeviceSession, EmailVerificationToken, PasswordResetToken, RefreshToken } from './entities.js';
import { authJobs } from './jobs.js';
import { authRoutes, type AuthRoutesOptions } from './routes.js';
import { AuthService, type AuthSettings } from './service.js';
import { TokenService, type TokenOptions } from './tokens.js';

export type { AuthService, RequestMeta, TokenPair } from './service.js';
export type { TokenService } from './tokens.js';

export interface AuthModuleDeps {
  infra: Infra;
  keys: SigningKeys;
  hasher: PasswordHasher;
  users: UsersModuleService;
  beta: BetaService;
  audit: AuditService;
  settings: AuthSettings & { tokens: TokenOptions; limits: AuthRoutesOptions['limits'] };
}

/** Sign-up, sign-in, device sessions with rotating refresh tokens, e-mail verification and password reset. */
export const authModule = defineModule({
  name: 'auth',
  entities: [DeviceSession, RefreshToken, PasswordResetToken, EmailVerificationToken],
  tags: [{ name: 'auth', description: 'Accounts, tokens and device sessions' }],
  create: ({ infra, keys, hasher, users, beta, audit, settings }: AuthModuleDeps) => {
    const tokens = new TokenService(keys, infra.redis.client, infra.clock, settings.tokens, createPreparedReader(infra.db), users.accounts);
    tokens.onSessionsDenied((sessionIds) => infra.realtime.disconnectSessions(sessionIds));
    const auth = new AuthService(
      {
        db: infra.db,
        redis: infra.redis.client,
        tokens,
        hasher,
        mail: infra.mail,
        jobs: infra.jobs,
        accounts: users.accounts,
        beta,
        audit,
        clock: infra.clock,
        ids: infra.ids,
        logger: infra.logger,
        events: infra.events,
      },
      settings,
    );
    // A banned account's sessions end at once, on every instance.
    infra.events.on('user.banned', ({ sessionIds }) => auth.denySessions(sessionIds));
    return {
      service: auth,
      http: async (app) => app.register(authRoutes, { auth, tokens, limits: settings.limits }),
      jobs: authJobs(auth),
    };
  },
});
