import type { Infra } from '../../infra/bundle.js';
import { LocalStorage } from '../../infra/storage.js';
import { defineModule } from '../kit.js';
import { localStorageRoutes } from './routes.js';

/** Serves the embedded storage's files behind signed URLs; with S3 the bucket serves them and this module has no routes. */
export const storageModule = defineModule({
  name: 'storage',
  entities: [],
  create: ({ infra }: { infra: Infra }) => {
    const { storage } = infra;
    return {
      service: undefined,
      ...(storage instanceof LocalStorage ? { http: async (app) => app.register(localStorageRoutes, { storage }) } : {}),
    };
  },
});
