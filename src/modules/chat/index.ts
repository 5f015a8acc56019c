import type { Infra } from '../../infra/bundle.js';
import { defineModule } from '../kit.js';
import type { OllamaProxy } from '../ollama/index.js';
import type { ProfilesService } from '../users/index.js';
import { ChatMessage, ChatThread } from './entities.js';
import { chatJobs } from './jobs.js';
import { ReplyHub } from './replies.js';
import { ChatRepository } from './repository.js';
import { chatRoutes } from './routes.js';
import { ChatService, type ChatSettings } from './service.js';

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
}

/** The AI partner's conversations: threads, messages, and replies streamed over SSE (and /ws). */
export const chatModule = defineModule({
  name: 'chat',
  entities: [ChatThread, ChatMessage],
  create: ({ infra, proxy, profiles, settings }: { infra: Infra; proxy: OllamaProxy; profiles: ProfilesService; settings: ChatModuleSettings }) => {
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
      },
      jobs: chatJobs(chat),
      close: async () => {
        unsubscribe();
        await chat.stopAll();
      },
    };
  },
});
