import multipart from '@fastify/multipart';
import type { Infra } from '../../infra/bundle.js';
import { createPreparedReader } from '../../infra/sql.js';
import { defineModule } from '../kit.js';
import { AccountsService } from './accounts.js';
import { Profile, User } from './entities.js';
import { ProfilesService, type ProfileSettings } from './profiles.js';
import { UsersRepository } from './repository.js';
import { usersRoutes } from './routes.js';

export type { AccountsService, AccountSummary, Audience, Credentials, UserSearchFilter } from './accounts.js';
export { ENGLISH_LEVELS } from './entities.js';
export type { EnglishLevel } from './repository.js';
export type { ProfilesService, MeView, ProfileCompletion, PublicName } from './profiles.js';

export interface UsersModuleSettings extends ProfileSettings {
  avatarMaxBytes: number;
}

/** The users module's two services: identity (accounts) and what a user shows (profiles). */
export interface UsersModuleService {
  accounts: AccountsService;
  profiles: ProfilesService;
}

/** Accounts and profiles: who a user is, what others see of them, their practice stats. */
export const usersModule = defineModule({
  name: 'users',
  entities: [User, Profile],
  tags: [
    { name: 'account', description: 'The signed-in account' },
    { name: 'users', description: 'Profiles, avatars and account deletion' },
  ],
  create: ({ infra, settings }: { infra: Infra; settings: UsersModuleSettings }) => {
    const repository = new UsersRepository(infra.db, createPreparedReader(infra.db));
    const profiles = new ProfilesService(
      { repository, redis: infra.redis.client, storage: infra.storage, clock: infra.clock, ids: infra.ids, logger: infra.logger },
      settings,
    );
    const accounts = new AccountsService({ repository, profiles, clock: infra.clock, ids: infra.ids });
    const service: UsersModuleService = { accounts, profiles };
    return {
      service,
      http: async (app) => {
        // Only the avatar upload takes multipart bodies.
        await app.register(multipart, { limits: { files: 1, fields: 0, parts: 2, fileSize: settings.avatarMaxBytes } });
        await app.register(usersRoutes, { profiles, avatarMaxBytes: settings.avatarMaxBytes });
      },
    };
  },
});
