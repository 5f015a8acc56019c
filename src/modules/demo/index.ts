import path from 'node:path';
import { projectRoot } from '../../infra/paths.js';
import { defineModule } from '../kit.js';
import { demoRoutes } from './routes.js';

/** A browser page that signs in, matches and calls: the API tried end to end (off in production unless enabled). */
export const demoModule = defineModule({
  name: 'demo',
  entities: [],
  create: ({ enabled }: { enabled: boolean }) => ({
    service: undefined,
    ...(enabled ? { http: async (app) => app.register(demoRoutes, { folder: path.join(projectRoot(), 'public/demo') }) } : {}),
  }),
});
