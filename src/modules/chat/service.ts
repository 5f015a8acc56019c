import { createHash } from 'node:crypto';
import type { Message } from 'ollama';
import type { Redis } from 'ioredis';
import type { Clock } from '../../infra/clock.js';
import type { IdGenerator } from '../../infra/ids.js';
import type { Logger } from '../../infra/logger.js';
import { AppError, NotFoundError, ShuttingDownError } from '../../shared/errors.js';
import { decodeCursor, toPage, type PageQuery } from '../../shared/pagination.js';
import type { AiCaller, ChatStream, OllamaProxy } from '../ollama/index.js';
import type { EnglishLevel } from '../users/index.js';
import type { MessageRole, MessageStatus } from './entities.js';
import { systemPrompt, titleFrom } from './prompt.js';
import type { ReplyEvent, ReplyEventBody, ReplyHub } from './replies.js';
import type { ChatRepository, MessageRecord, OwnerKey, ThreadRecord } from './repository.js';

/** Who a thread belongs to: a signed-in user, or an anonymous WebSocket session (its secret id). */
export type ChatOwner = { userId: string } | { anonymousId: string };

export interface ThreadView {
  id: string;
  title: string;
  model: string;
  topic: string | null;
  messageCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface MessageView {
  id: string;
  sessionId: string;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  model: string | null;
  promptTokens: number | null;
  replyTokens: number | null;
  createdAt: Date;
}

/** A reply that has started: the thread (new or not), the student's saved message, and the reply's events. */
export interface ReplyHandle {
  thread: ThreadView;
  userMessage: MessageView;
  replyId: string;
  /** The reply's events after `afterSeq` (0: all), ending with `done` or `error`, or early when `signal` aborts. */
  events(afterSeq: number, signal: AbortSignal): AsyncGenerator<ReplyEvent>;
}

export interface ChatSettings {
  /** The model of a thread created without one. */
  defaultModel: string;
  /** How many earlier messages of the thread the model is given. */
  historyMessages: number;
  /** Anonymous conversations nobody wrote in for this long are deleted. */
  anonymousRetentionMs: number;
  /** A reply is cut off after this long, whatever the model does. */
  replyMaxMs: number;
}

export const NEW_THREAD_TITLE = 'New conversation';
const PURGE_BATCH = 500;

/** How an anonymous session is known where its id (its secret) must not be kept: the SHA-256 of the id. */
export const anonymousKey = (anonymousId: string) => createHash('sha256').update(anonymousId).digest('hex');
const ownerKey = (owner: ChatOwner): OwnerKey => ('userId' in owner ? { userId: owner.userId } : { anonymousKey: anonymousKey(owner.anonymousId) });
const busyKey = (threadId: string) => `chat:busy:{${threadId}}`;

/** A thread as clients see it: never its owner's keys. */
function threadView(row: ThreadView): ThreadView {
  return {
    id: row.id,
    title: row.title,
    model: row.model,
    topic: row.topic,
    messageCount: row.messageCount,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

function messageView(row: MessageRecord): MessageView {
  return {
    id: row.id,
    sessionId: row.threadId,
    role: row.role,
    content: row.content,
    status: row.status,
    model: row.model,
    promptTokens: row.promptTokens,
    replyTokens: row.replyTokens,
    createdAt: row.createdAt,
  };
}

/** Why a reply was stopped from this side (any other end of the stream is the model's). */
type StopReason = 'shutdown' | 'too_long' | 'deleted';

/** What the client hears of a reply that ended early, by why: stopped here, or the model broke off. */
const CUT_OFF: Record<StopReason | 'broken', { code: string; message: string }> = {
  shutdown: { code: 'reply_interrupted', message: 'The server restarted while the partner was answering; ask again' },
  too_long: { code: 'reply_too_long', message: 'The reply took too long and was cut off' },
  deleted: { code: 'not_found', message: 'The conversation was deleted while the partner was answering' },
  broken: { code: 'ai_unavailable', message: 'The model stopped answering mid-reply; try again' },
};

/**
 * The AI partner's conversations (document 001's sessions): threads and their messages, and
 * replies streamed from the model token by token. A reply is saved when complete; its events
 * go through the ReplyHub, so a client that lost its connection resumes it where it stopped.
 * A reply keeps going when its client leaves (it is saved for when they come back); the
 * daily token budget bounds what that costs.
 */
export class ChatService {
  /** Replies being written by this instance (from the moment the model is asked): their thread, how to stop each, and when it has been saved. */
  private readonly running = new Map<string, { threadId: string; stop: (reason: StopReason) => void; settled: Promise<void> }>();
  /** Set once the server is stopping: a reply that starts now is stopped at once. */
  private stopping = false;

  constructor(
    private readonly dependencies: {
      repository: ChatRepository;
      proxy: OllamaProxy;
      levels: { englishLevel(userId: string): Promise<EnglishLevel | null> };
      hub: ReplyHub;
      redis: Redis;
      clock: Clock;
      ids: IdGenerator;
      logger: Logger;
    },
    private readonly settings: ChatSettings,
  ) {}

  async listThreads(owner: ChatOwner, page: PageQuery) {
    const rows = await this.dependencies.repository.listThreads(ownerKey(owner), page.limit, decodeCursor(page.cursor));
    // ordered by the last message: the cursor carries that time
    return toPage(rows, page.limit, threadView, (row) => ({ createdAt: row.updatedAt, id: row.id }));
  }

  async createThread(owner: ChatOwner, input: { title?: string | undefined; model?: string | undefined; topic?: string | undefined }): Promise<ThreadView> {
    return threadView(await this.openThread(owner, input));
  }

  private async openThread(
    owner: ChatOwner,
    input: { title?: string | undefined; model?: string | undefined; topic?: string | undefined },
  ): Promise<ThreadRecord> {
    return this.dependencies.repository.createThread({
      id: this.dependencies.ids.uuid(),
      userId: 'userId' in owner ? owner.userId : null,
      anonymousKey: 'anonymousId' in owner ? anonymousKey(owner.anonymousId) : null,
      title: input.title?.trim() || NEW_THREAD_TITLE,
      model: input.model ?? this.settings.defaultModel,
      topic: input.topic?.trim() || null,
      createdAt: this.dependencies.clock.now(),
    });
  }

  async getThread(owner: ChatOwner, threadId: string): Promise<ThreadView> {
    return threadView(await this.ownThread(owner, threadId));
  }

  private async ownThread(owner: ChatOwner, threadId: string): Promise<ThreadRecord> {
    const thread = await this.dependencies.repository.findThread(ownerKey(owner), threadId);
    if (!thread) throw new NotFoundError('Chat session');
    return thread;
  }

  async messages(owner: ChatOwner, threadId: string, page: PageQuery) {
    const thread = await this.ownThread(owner, threadId);
    const rows = await this.dependencies.repository.listMessages(thread.id, page.limit, decodeCursor(page.cursor));
    return toPage(rows, page.limit, messageView);
  }

  /** Saves a message the client produced (document 001's front end keeps its own copy of a conversation). */
  async saveMessage(owner: ChatOwner, input: { sessionId: string; role: MessageRole; content: string }): Promise<MessageView> {
    const thread = await this.ownThread(owner, input.sessionId);
    const saved = await this.dependencies.repository.append(
      thread.id,
      [
        {
          id: this.dependencies.ids.uuid(),
          role: input.role,
          content: input.content,
          status: 'complete',
          model: input.role === 'assistant' ? thread.model : null,
        },
      ],
      this.dependencies.clock.now(),
      input.role === 'user' ? { placeholder: NEW_THREAD_TITLE, fromMessage: titleFrom(input.content) } : undefined,
    );
    if (!saved) throw new NotFoundError('Chat session');
    return messageView(saved[0]!);
  }

  /**
   * Saves the student's message and starts the partner's reply in the thread (a new thread
   * when none is named). Resolves once the model has started answering: a refusal (no model,
   * over budget, a reply already running in this thread) is an error here, and then nothing
   * is saved.
   */
  async startReply(owner: ChatOwner, input: { threadId?: string | undefined; content: string }): Promise<ReplyHandle> {
    const { repository, proxy, ids, clock, redis } = this.dependencies;
    const thread = input.threadId ? await this.ownThread(owner, input.threadId) : await this.openThread(owner, {});
    const replyId = ids.uuid();
    if (!(await redis.set(busyKey(thread.id), replyId, 'PX', this.settings.replyMaxMs, 'NX')))
      throw new AppError('reply_in_progress', 'The partner is still answering in this conversation: wait for the reply, then write again');
    const release = () =>
      redis
        .eval(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`, 1, busyKey(thread.id), replyId)
        .catch((error: unknown) => this.dependencies.logger.warn({ err: error, threadId: thread.id }, 'could not free a conversation after its reply'));

    const controller = new AbortController();
    let stopReason: StopReason | undefined;
    const stop = (reason: StopReason) => {
      stopReason ??= reason;
      controller.abort();
    };
    const deadline = setTimeout(() => stop('too_long'), this.settings.replyMaxMs);
    deadline.unref();
    // known from the start: a shutdown, or the account's deletion, also stops a reply whose model is still loading
    let settle!: () => void;
    this.running.set(replyId, { threadId: thread.id, stop, settled: new Promise<void>((resolve) => (settle = resolve)) });
    if (this.stopping) stop('shutdown');

    let stream: ChatStream | undefined;
    let saved: MessageRecord[] | null = null;
    const now = clock.now();
    try {
      const [history, level] = await Promise.all([
        repository.recentHistory(thread.id, this.settings.historyMessages),
        'userId' in owner ? this.dependencies.levels.englishLevel(owner.userId) : Promise.resolve(null),
      ]);
      const messages: Message[] = [
        { role: 'system', content: systemPrompt({ level, topic: thread.topic }) },
        ...history,
        { role: 'user', content: input.content },
      ];
      const caller: AiCaller = 'userId' in owner ? { userId: owner.userId } : { anonymousId: anonymousKey(owner.anonymousId) };
      // the model starts while the messages are written: the first token does not wait for the database
      const [opened, written] = await Promise.allSettled([
        proxy.chat(caller, { model: thread.model, messages }, controller.signal),
        repository.append(
          thread.id,
          [
            { id: ids.uuid(), role: 'user', content: input.content, status: 'complete', model: null },
            { id: replyId, role: 'assistant', content: '', status: 'streaming', model: thread.model },
          ],
          now,
          { placeholder: NEW_THREAD_TITLE, fromMessage: titleFrom(input.content) },
        ),
      ]);
      if (opened.status === 'fulfilled') stream = opened.value;
      if (written.status === 'fulfilled') saved = written.value;
      if (opened.status === 'rejected') throw opened.reason;
      if (written.status === 'rejected') throw written.reason;
      if (!saved) throw new NotFoundError('Chat session');
      if (!stream) throw new Error('the model answered nothing');
    } catch (error) {
      clearTimeout(deadline);
      controller.abort();
      stream?.abort();
      try {
        // a conversation opened for this message goes with it; an older one is as it was
        if (!input.threadId) await repository.deleteThread(thread.id);
        else if (saved)
          await repository.retract(
            thread,
            saved.map((row) => row.id),
          );
      } finally {
        this.running.delete(replyId);
        await release();
        settle();
      }
      if (stopReason === 'shutdown') throw new ShuttingDownError();
      if (stopReason === 'deleted') throw new NotFoundError('Chat session');
      throw error;
    }

    const emit = this.dependencies.hub.open(replyId);
    void this.pump(replyId, stream, emit, () => stopReason).finally(async () => {
      clearTimeout(deadline);
      this.running.delete(replyId);
      await release();
      settle();
    });
    const named = thread.title === NEW_THREAD_TITLE && thread.messageCount === 0;
    return {
      thread: threadView({ ...thread, title: named ? titleFrom(input.content) : thread.title, messageCount: thread.messageCount + 2, updatedAt: now }),
      userMessage: messageView(saved[0]!),
      replyId,
      events: (afterSeq, signal) => this.followReply(thread.id, replyId, afterSeq, signal),
    };
  }

  /** Relays the model's reply to the hub, then saves it whole (or as far as it got). */
  private async pump(replyId: string, stream: ChatStream, emit: (event: ReplyEventBody) => void, stopped: () => StopReason | undefined): Promise<void> {
    const { repository, logger } = this.dependencies;
    let content = '';
    let promptTokens: number | null = null;
    let replyTokens: number | null = null;
    let final: ReplyEventBody;
    let status: MessageStatus;
    try {
      for await (const part of stream.parts) {
        const text = part.message?.content ?? '';
        if (text) {
          content += text;
          emit({ type: 'token', text });
        }
        if (part.done) {
          promptTokens = part.prompt_eval_count ?? null;
          replyTokens = part.eval_count ?? null;
        }
      }
      status = 'complete';
      final = { type: 'done', messageId: replyId, content, promptTokens, replyTokens };
    } catch (error) {
      const reason = stopped();
      status = reason ? 'interrupted' : 'failed';
      if (!reason) logger.warn({ err: error, replyId }, 'the model broke off a reply');
      final = { type: 'error', ...CUT_OFF[reason ?? 'broken'] };
    }
    try {
      // its row gone: the conversation was deleted meanwhile (maybe through another instance), nothing is kept
      if (!(await repository.finishReply(replyId, { content, status, promptTokens, replyTokens }))) final = { type: 'error', ...CUT_OFF.deleted };
    } catch (error) {
      logger.error({ err: error, replyId }, 'could not save a reply');
      final = { type: 'error', code: 'internal_error', message: 'The reply could not be saved' };
    }
    emit(final);
  }

  /** Resumes a reply of one of the owner's threads after the event the client last had. */
  async resumeReply(owner: ChatOwner, replyId: string, afterSeq: number, signal: AbortSignal): Promise<AsyncGenerator<ReplyEvent>> {
    const reply = await this.dependencies.repository.findOwnedMessage(ownerKey(owner), replyId);
    if (reply?.role !== 'assistant') throw new NotFoundError('Reply');
    return this.followReply(reply.threadId, replyId, afterSeq, signal);
  }

  private followReply(threadId: string, replyId: string, afterSeq: number, signal: AbortSignal): AsyncGenerator<ReplyEvent> {
    return this.dependencies.hub.follow(replyId, afterSeq, signal, async () => {
      const reply = await this.dependencies.repository.findMessage(threadId, replyId);
      if (!reply) return null;
      if (reply.status === 'streaming') return 'streaming';
      if (reply.status === 'complete')
        return { type: 'done', messageId: reply.id, content: reply.content, promptTokens: reply.promptTokens, replyTokens: reply.replyTokens };
      return { type: 'error', code: 'reply_interrupted', message: 'This reply was cut off before it finished; ask again' };
    });
  }

  /** An anonymous session that signs in keeps its conversations. */
  async claimAnonymous(anonymousId: string, userId: string): Promise<number> {
    return this.dependencies.repository.claim(anonymousKey(anonymousId), userId);
  }

  /** Deletes a user's conversations; the replies this instance is writing in them stop. */
  async deleteThreadsOf(userId: string): Promise<number> {
    const deleted = new Set(await this.dependencies.repository.deleteThreadsOf(userId));
    for (const reply of this.running.values()) if (deleted.has(reply.threadId)) reply.stop('deleted');
    return deleted.size;
  }

  /**
   * Marks the replies no instance can still be writing (older than the longest a reply may
   * take) as interrupted, and deletes anonymous conversations past their retention.
   */
  async sweep(): Promise<{ interrupted: number; purged: number }> {
    const now = this.dependencies.clock.now().getTime();
    const interrupted = await this.dependencies.repository.interruptStale(new Date(now - this.settings.replyMaxMs - 60_000));
    const before = new Date(now - this.settings.anonymousRetentionMs);
    let purged = 0;
    for (;;) {
      const batch = await this.dependencies.repository.purgeAnonymous(before, PURGE_BATCH);
      purged += batch;
      if (batch < PURGE_BATCH) break;
    }
    return { interrupted, purged };
  }

  /** Stops the replies this instance is writing (they are saved as interrupted, their listeners told). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const running = [...this.running.values()];
    for (const reply of running) reply.stop('shutdown');
    await Promise.all(running.map((reply) => reply.settled));
  }
}
