import path from 'node:path';
import { projectRoot } from '../../infra/paths.js';
import { defineModule } from '../kit.js';
import { pagesRoutes } from './routes.js';

/** The pages e-mail links open when no front end is configured (reset password, verify e-mail). */
export const pagesModule = defineModule({
  name: 'pages',
  entities: [],
  create: (_deps: object) => ({
    service: undefined,
    http: async (app) => app.register(pagesRoutes, { folder: path.join(projectRoot(), 'public/pages') }),
  }),
});
