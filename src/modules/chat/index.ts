import type { Infra } from '../../infra/bundle.js';
import type { PrincipalVerifier } from '../../shared/auth.js';
import type { AccountGate } from '../../shared/socket-auth.js';
import type { AuditService } from '../audit/index.js';
import { defineModule } from '../kit.js';
import type { OllamaProxy } from '../ollama/index.js';
import type { ProfilesService } from '../users/index.js';
import { ChatMessage, ChatThread } from './entities.js';
import { chatJobs } from './jobs.js';
import { ReplyHub } from './replies.js';
import { ChatRepository } from './repository.js';
import { chatRoutes } from './routes.js';
import { ChatService, type ChatSettings } from './service.js';
import { chatSocketRoutes } from './ws.js';
import { ChatSocketGateway } from './ws-gateway.js';
import { ChatSocketLimits, type ChatSocketLimitSettings } from './ws-limits.js';

export type { ChatOwner, ChatService, MessageView, ReplyHandle, ThreadView } from './service.js';
export type { ReplyEvent } from './replies.js';
export { replyFrame } from './routes.js';
export { messageTextSchema } from './schemas.js';

export interface ChatModuleSettings extends ChatSettings {
  maxMessageChars: number;
  sseHeartbeatMs: number;
  /** How long a reply's events stay in Redis for clients that reconnect. */
  resumeRetentionSeconds: number;
  idleTimeoutMs: number;
  /** The WebSocket chat at /ws. */
  socket: {
    /** FRONTEND_URL: the browser origins that may connect. */
    allowedOrigins: string[];
    authTimeoutMs: number;
    pingIntervalMs: number;
    blockSuspicious: boolean;
    limits: Omit<ChatSocketLimitSettings, 'openConnectionTtlMs'>;
  };
}

export interface ChatModuleDependencies {
  infra: Infra;
  proxy: OllamaProxy;
  profiles: ProfilesService;
  audit: AuditService;
  /**
   * /ws authenticates with the same access tokens and account checks as HTTP and Socket.io, and
   * (ACCEPT_EXTERNAL_TOKENS=on) with a trusted issuer's token, as the chat routes do.
   */
  verifier: PrincipalVerifier;
  accounts: AccountGate;
  settings: ChatModuleSettings;
}

/** The AI partner's conversations: threads, messages, and replies streamed over SSE and /ws. */
export const chatModule = defineModule({
  name: 'chat',
  entities: [ChatThread, ChatMessage],
  create: ({ infra, proxy, profiles, audit, verifier, accounts, settings }: ChatModuleDependencies) => {
    const hub = new ReplyHub(
      { redis: infra.redis.client, logger: infra.logger },
      { retentionSeconds: settings.resumeRetentionSeconds, idleTimeoutMs: settings.idleTimeoutMs },
    );
    const chat = new ChatService(
      {
        repository: new ChatRepository(infra.db),
        proxy,
        levels: profiles,
        hub,
        redis: infra.redis.client,
        clock: infra.clock,
        ids: infra.ids,
        logger: infra.logger,
      },
      settings,
    );
    const closing = new AbortController();
    const gateway = new ChatSocketGateway(
      {
        chat,
        limits: new ChatSocketLimits(
          { redis: infra.redis.client, clock: infra.clock, instanceId: infra.ids.uuid() },
          // an instance that died stops refreshing its connections: they stop counting after three pings
          { ...settings.socket.limits, openConnectionTtlMs: 3 * settings.socket.pingIntervalMs },
        ),
        verifier,
        accounts,
        audit,
        ids: infra.ids,
        logger: infra.logger,
        closing: closing.signal,
      },
      {
        maxMessageChars: settings.maxMessageChars,
        authTimeoutMs: settings.socket.authTimeoutMs,
        pingIntervalMs: settings.socket.pingIntervalMs,
        blockSuspicious: settings.socket.blockSuspicious,
      },
    );
    const unsubscribe = infra.events.on('user.deleted', async ({ userId }) => {
      await chat.deleteThreadsOf(userId);
    });
    return {
      service: chat,
      http: async (app) => {
        // replies being written end (saved as interrupted, their clients told) before the server stops listening
        app.addHook('preClose', async () => {
          await chat.stopAll();
          closing.abort();
        });
        await app.register(chatRoutes, { chat, maxMessageChars: settings.maxMessageChars, heartbeatMs: settings.sseHeartbeatMs, closing: closing.signal });
        await app.register(chatSocketRoutes, { gateway, maxMessageChars: settings.maxMessageChars, allowedOrigins: settings.socket.allowedOrigins });
      },
      jobs: chatJobs(chat),
      close: async () => {
        unsubscribe();
        await chat.stopAll();
      },
    };
  },
});
