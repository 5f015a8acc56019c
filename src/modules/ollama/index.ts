import type { Infra } from '../../infra/bundle.js';
import type { SecretBox } from '../../infra/secret-box.js';
import type { AuditService } from '../audit/index.js';
import type { AuthService } from '../auth/index.js';
import { defineModule } from '../kit.js';
import { OllamaKey } from './entities.js';
import { OllamaRepository } from './repository.js';
import { ollamaKeyRoutes } from './routes.js';
import { OllamaKeyService } from './service.js';

export type { OllamaKeyService } from './service.js';
export { OllamaRepository } from './repository.js';

export interface OllamaSettings {
  revealWithinMs: number;
  revealLimit: { max: number; windowMs: number };
}

/** The AI partner's upstream: users' Ollama keys (sealed at rest). */
export const ollamaModule = defineModule({
  name: 'ollama',
  entities: [OllamaKey],
  tags: [{ name: 'ai', description: 'The AI conversation partner: Ollama keys' }],
  create: ({ infra, box, audit, auth, settings }: { infra: Infra; box: SecretBox; audit: AuditService; auth: AuthService; settings: OllamaSettings }) => {
    const repository = new OllamaRepository(infra.db);
    const keys = new OllamaKeyService({ repository, box, redis: infra.redis.client, clock: infra.clock, logger: infra.logger, audit, auth }, settings);
    // a deleted account's key goes with it (the user row stays, anonymised)
    const unsubscribe = infra.events.on('user.deleted', async ({ userId }) => {
      await repository.delete(userId);
    });
    const { max, windowMs } = settings.revealLimit;
    return {
      service: keys,
      http: async (app) =>
        app.register(ollamaKeyRoutes, {
          keys,
          revealWithinMinutes: Math.round(settings.revealWithinMs / 60_000),
          revealLimit: `${max} per ${Math.round(windowMs / 60_000)} minutes`,
        }),
      close: async () => unsubscribe(),
    };
  },
});
