import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import { opsRoutes } from './routes.js';

/** Health, readiness and Prometheus metrics for the operator. */
export const opsModule = defineModule({
  name: 'ops',
  entities: [],
  tags: [{ name: 'ops', description: 'Health, readiness and metrics' }],
  create: ({ infra, metricsToken }: { infra: Infra; metricsToken: string | undefined }) => ({
    service: undefined,
    http: async (app) =>
      app.register(opsRoutes, { db: infra.db, redis: infra.redis.client, registry: infra.metrics.registry, clock: infra.clock, metricsToken }),
  }),
});
