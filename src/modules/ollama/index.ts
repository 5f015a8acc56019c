import type { Infra } from '../../infra/bundle.js';
import type { CircuitBreaker } from '../../infra/circuit-breaker.js';
import type { GuardedFetch } from '../../infra/outbound.js';
import type { SecretBox } from '../../infra/secret-box.js';
import type { AuditService } from '../audit/index.js';
import type { AuthService } from '../auth/index.js';
import { defineModule } from '../kit.js';
import { OllamaKey } from './entities.js';
import { OllamaProxy, type ProxySettings } from './proxy.js';
import { OllamaRepository } from './repository.js';
import { ollamaKeyRoutes, ollamaProxyRoutes } from './routes.js';
import { OllamaKeyService } from './service.js';

export type { OllamaKeyService } from './service.js';
export { OllamaRepository } from './repository.js';

export type { AiCaller, ChatStream, OllamaProxy } from './proxy.js';
export { exportEntries, fernetDecrypt, FernetError, importOllamaKeys, parseFernetKey, type FernetKey, type ImportReport } from './import.js';

export interface OllamaSettings extends ProxySettings {
  revealWithinMs: number;
  revealLimit: { max: number; windowMs: number };
}

/** The module's services: the stored keys, and the proxy to the model. */
export interface OllamaModuleService {
  keys: OllamaKeyService;
  proxy: OllamaProxy;
}

/** The AI partner's upstream: users' Ollama keys (sealed at rest). */
export const ollamaModule = defineModule({
  name: 'ollama',
  entities: [OllamaKey],
  tags: [{ name: 'ai', description: 'The AI conversation partner: Ollama keys and the streaming proxy' }],
  create: ({
    infra,
    box,
    fetch,
    breaker,
    audit,
    auth,
    settings,
  }: {
    infra: Infra;
    box: SecretBox;
    /** Outbound HTTP that refuses unconfigured private addresses (closed with the module). */
    fetch: GuardedFetch;
    breaker: CircuitBreaker;
    audit: AuditService;
    auth: AuthService;
    settings: OllamaSettings;
  }) => {
    const repository = new OllamaRepository(infra.db);
    const keys = new OllamaKeyService(
      { repository, box, redis: infra.redis.client, clock: infra.clock, logger: infra.logger, audit, auth, locks: infra.locks },
      { ...settings, trustedBaseUrl: settings.defaultBaseUrl },
    );
    const proxy = new OllamaProxy({ keys, fetch, breaker, redis: infra.redis.client, clock: infra.clock, logger: infra.logger }, settings);
    // a deleted account's key goes with it (the user row stays, anonymised)
    const unsubscribe = infra.events.on('user.deleted', async ({ userId }) => {
      await repository.delete(userId);
    });
    const { max, windowMs } = settings.revealLimit;
    return {
      service: { keys, proxy } satisfies OllamaModuleService,
      http: async (app) => {
        await app.register(ollamaKeyRoutes, {
          keys,
          revealWithinMinutes: Math.round(settings.revealWithinMs / 60_000),
          revealLimit: `${max} per ${Math.round(windowMs / 60_000)} minutes`,
        });
        await app.register(ollamaProxyRoutes, { proxy, logger: infra.logger });
      },
      close: async () => {
        unsubscribe();
        await fetch.close();
      },
    };
  },
});
