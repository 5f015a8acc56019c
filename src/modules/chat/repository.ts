import type { DataSource } from 'typeorm';
import type { Keyset } from '../../shared/pagination.js';
import type { ChatMessage, ChatThread, MessageRole, MessageStatus } from './entities.js';

export type ThreadRecord = Omit<ChatThread, 'user'>;
export type MessageRecord = Omit<ChatMessage, 'thread'>;

/** Whose threads: a user's, or an anonymous session's (by the hash of its id). */
export type OwnerKey = { userId: string } | { anonymousKey: string };

const THREAD_COLUMNS = `id, user_id AS "userId", anonymous_key AS "anonymousKey", title, model, topic, message_count AS "messageCount",
  created_at AS "createdAt", updated_at AS "updatedAt"`;
const MESSAGE_COLUMNS = `id, thread_id AS "threadId", role, content, status, model, prompt_tokens AS "promptTokens", reply_tokens AS "replyTokens",
  created_at AS "createdAt"`;

const ownerColumn = (owner: OwnerKey) => ('userId' in owner ? 'user_id' : 'anonymous_key');
const ownerValue = (owner: OwnerKey) => ('userId' in owner ? owner.userId : owner.anonymousKey);

export interface NewMessage {
  id: string;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  model: string | null;
}

/** The only SQL of the chat module. */
export class ChatRepository {
  constructor(private readonly db: DataSource) {}

  async createThread(thread: Omit<ThreadRecord, 'messageCount' | 'updatedAt'>): Promise<ThreadRecord> {
    const rows: ThreadRecord[] = await this.db.query(
      `INSERT INTO chat_threads (id, user_id, anonymous_key, title, model, topic, message_count, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) RETURNING ${THREAD_COLUMNS}`,
      [thread.id, thread.userId, thread.anonymousKey, thread.title, thread.model, thread.topic, thread.createdAt],
    );
    return rows[0]!;
  }

  /** The owner's thread, or null (another owner's thread is not theirs to see). */
  async findThread(owner: OwnerKey, id: string): Promise<ThreadRecord | null> {
    const rows: ThreadRecord[] = await this.db.query(`SELECT ${THREAD_COLUMNS} FROM chat_threads WHERE id = $1 AND ${ownerColumn(owner)} = $2`, [
      id,
      ownerValue(owner),
    ]);
    return rows[0] ?? null;
  }

  /** Most recently active first; `limit + 1` rows so the caller knows whether a page follows. */
  async listThreads(owner: OwnerKey, limit: number, after?: Keyset): Promise<ThreadRecord[]> {
    return this.db.query(
      `SELECT ${THREAD_COLUMNS} FROM chat_threads WHERE ${ownerColumn(owner)} = $1
         AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3::uuid))
       ORDER BY updated_at DESC, id DESC LIMIT $4`,
      [ownerValue(owner), after?.createdAt ?? null, after?.id ?? null, limit + 1],
    );
  }

  /** Oldest first, after the cursor; `limit + 1` rows. */
  async listMessages(threadId: string, limit: number, after?: Keyset): Promise<MessageRecord[]> {
    return this.db.query(
      `SELECT ${MESSAGE_COLUMNS} FROM chat_messages WHERE thread_id = $1
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [threadId, after?.createdAt ?? null, after?.id ?? null, limit + 1],
    );
  }

  /** The thread's last `limit` complete messages, oldest first: the model's memory of the conversation. */
  async recentHistory(threadId: string, limit: number): Promise<Array<Pick<MessageRecord, 'role' | 'content'>>> {
    const rows: Array<Pick<MessageRecord, 'role' | 'content'>> = await this.db.query(
      `SELECT role, content FROM (
         SELECT role, content, created_at, id FROM chat_messages WHERE thread_id = $1 AND status = 'complete' AND content <> ''
         ORDER BY created_at DESC, id DESC LIMIT $2) recent
       ORDER BY created_at, id`,
      [threadId, limit],
    );
    return rows;
  }

  /** A message of one of the owner's threads, or null. */
  async findOwnedMessage(owner: OwnerKey, id: string): Promise<MessageRecord | null> {
    const rows: MessageRecord[] = await this.db.query(
      `SELECT ${MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1 AND thread_id IN (SELECT id FROM chat_threads WHERE ${ownerColumn(owner)} = $2)`,
      [id, ownerValue(owner)],
    );
    return rows[0] ?? null;
  }

  async findMessage(threadId: string, id: string): Promise<MessageRecord | null> {
    const rows: MessageRecord[] = await this.db.query(`SELECT ${MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1 AND thread_id = $2`, [id, threadId]);
    return rows[0] ?? null;
  }

  /**
   * Adds messages to a thread in one statement: the thread's count and activity time move with
   * them, and a thread still called by its placeholder takes its title from `title` when given.
   * Null when the thread is gone (deleted meanwhile).
   */
  async append(threadId: string, messages: NewMessage[], at: Date, title?: { placeholder: string; fromMessage: string }): Promise<MessageRecord[] | null> {
    const rows: MessageRecord[] = await this.db.query(
      `WITH thread AS (
         UPDATE chat_threads SET message_count = message_count + $3, updated_at = $2,
           title = CASE WHEN $8::text IS NOT NULL AND message_count = 0 AND title = $8 THEN $9 ELSE title END
         WHERE id = $1 RETURNING id)
       INSERT INTO chat_messages (id, thread_id, role, content, status, model, created_at)
       SELECT m.id, thread.id, m.role::chat_message_role, m.content, m.status::chat_message_status, m.model,
              $2::timestamptz + (m.ord - 1) * interval '1 microsecond'
       FROM thread, unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $10::text[]) WITH ORDINALITY AS m(id, role, content, status, model, ord)
       RETURNING ${MESSAGE_COLUMNS}`,
      [
        threadId,
        at,
        messages.length,
        messages.map((message) => message.id),
        messages.map((message) => message.role),
        messages.map((message) => message.content),
        messages.map((message) => message.status),
        title?.placeholder ?? null,
        title?.fromMessage ?? null,
        messages.map((message) => message.model),
      ],
    );
    return rows.length ? rows.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()) : null;
  }

  /** Takes back messages just appended (the model refused to answer): the thread is as before. */
  async retract(before: Pick<ThreadRecord, 'id' | 'title' | 'updatedAt'>, ids: string[]): Promise<void> {
    await this.db.query(
      `WITH gone AS (DELETE FROM chat_messages WHERE thread_id = $1 AND id = ANY($2::uuid[]) RETURNING id)
       UPDATE chat_threads SET message_count = message_count - (SELECT count(*) FROM gone), title = $3, updated_at = $4 WHERE id = $1`,
      [before.id, ids, before.title, before.updatedAt],
    );
  }

  /** Writes a reply's final text and state; only a reply still streaming changes. */
  async finishReply(id: string, update: { content: string; status: MessageStatus; promptTokens: number | null; replyTokens: number | null }): Promise<boolean> {
    const [, count]: [unknown, number] = await this.db.query(
      `UPDATE chat_messages SET content = $2, status = $3, prompt_tokens = $4, reply_tokens = $5 WHERE id = $1 AND status = 'streaming'`,
      [id, update.content, update.status, update.promptTokens, update.replyTokens],
    );
    return count > 0;
  }

  /** Replies left streaming by an instance that died, with no word for `before`: marked interrupted. */
  async interruptStale(before: Date): Promise<number> {
    const [, count]: [unknown, number] = await this.db.query(`UPDATE chat_messages SET status = 'interrupted' WHERE status = 'streaming' AND created_at < $1`, [
      before,
    ]);
    return count;
  }

  /** An anonymous session's threads become the user's when that session signs in. */
  async claim(anonymousKey: string, userId: string): Promise<number> {
    const [, count]: [unknown, number] = await this.db.query(`UPDATE chat_threads SET user_id = $2, anonymous_key = NULL WHERE anonymous_key = $1`, [
      anonymousKey,
      userId,
    ]);
    return count;
  }

  async deleteThread(id: string): Promise<void> {
    await this.db.query(`DELETE FROM chat_threads WHERE id = $1`, [id]);
  }

  /** Deletes a user's threads; their ids. */
  async deleteThreadsOf(userId: string): Promise<string[]> {
    const [rows]: [Array<{ id: string }>, number] = await this.db.query(`DELETE FROM chat_threads WHERE user_id = $1 RETURNING id`, [userId]);
    return rows.map((row) => row.id);
  }

  /** Anonymous threads nobody wrote in since `before`: nobody can sign in to claim them any more. */
  async purgeAnonymous(before: Date, limit: number): Promise<number> {
    const [, count]: [unknown, number] = await this.db.query(
      `DELETE FROM chat_threads WHERE id IN (SELECT id FROM chat_threads WHERE anonymous_key IS NOT NULL AND updated_at < $1 LIMIT $2)`,
      [before, limit],
    );
    return count;
  }
}
