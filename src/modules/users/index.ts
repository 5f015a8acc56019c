import multipart from '@fastify/multipart';
import type { Infra } from '../../infra/bundle.js';
import { createPreparedReader } from '../../infra/sql.js';
import { defineModule } from '../kit.js';
import { Profile, User } from './entities.js';
import { usersRoutes } from './routes.js';
import { UsersService, type ProfileSettings } from './service.js';

export type { AccountSummary, Credentials, MeView, ProfileView, PublicProfileView, UsersService } from './service.js';

export interface UsersModuleSettings extends ProfileSettings {
  avatarMaxBytes: number;
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
    const users = new UsersService(infra.db, createPreparedReader(infra.db), infra.redis.client, infra.storage, infra.clock, infra.ids, infra.logger, settings);
    return {
      service: users,
      http: async (app) => {
        // Only the avatar upload takes multipart bodies.
        await app.register(multipart, { limits: { files: 1, fields: 0, parts: 2, fileSize: settings.avatarMaxBytes } });
        await app.register(usersRoutes, { users, avatarMaxBytes: settings.avatarMaxBytes });
      },
    };
  },
});
