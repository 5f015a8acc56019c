import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';

export const MESSAGE_ROLES = ['user', 'assistant'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

/**
 * Where a message stands: a reply is `streaming` while the model writes it, `complete` when it
 * finished, `interrupted` when it was cut (the server stopped), `failed` when the model broke off.
 */
export const MESSAGE_STATUSES = ['complete', 'streaming', 'interrupted', 'failed'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/**
 * A conversation with the AI partner. It belongs to a user, or to an anonymous WebSocket
 * session (the hash of its id) until that session signs in and takes it over.
 */
@Entity('chat_threads')
@Check('chat_threads_owner_check', '(user_id IS NULL) <> (anonymous_key IS NULL)')
@Index('chat_threads_user_idx', ['userId', 'updatedAt', 'id'])
@Index('chat_threads_anonymous_idx', ['anonymousKey', 'updatedAt'])
export class ChatThread {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @ManyToOne('User', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'chat_threads_user_id_fkey' })
  user?: unknown;

  /** SHA-256 of an anonymous session's id (never the id itself: it is that session's secret). */
  @Column({ name: 'anonymous_key', type: 'varchar', length: 64, nullable: true })
  anonymousKey!: string | null;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  @Column({ type: 'varchar', length: 200 })
  model!: string;

  /** What the student wants to talk about; the system prompt steers the conversation there. */
  @Column({ type: 'varchar', length: 200, nullable: true })
  topic!: string | null;

  @Column({ name: 'message_count', type: 'integer', default: 0 })
  messageCount!: number;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** The last message's time (the creation time before the first): the list is ordered by it. */
  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** One turn of a thread: what the student said, or the AI partner's reply. */
@Entity('chat_messages')
@Index('chat_messages_thread_idx', ['threadId', 'createdAt', 'id'])
@Index('chat_messages_streaming_idx', ['createdAt'], { where: "status = 'streaming'" })
export class ChatMessage {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'thread_id', type: 'uuid' })
  threadId!: string;

  @ManyToOne(() => ChatThread, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'thread_id', foreignKeyConstraintName: 'chat_messages_thread_id_fkey' })
  thread?: ChatThread;

  @Column({ type: 'enum', enum: MESSAGE_ROLES, enumName: 'chat_message_role' })
  role!: MessageRole;

  @Column({ type: 'text' })
  content!: string;

  @Column({ type: 'enum', enum: MESSAGE_STATUSES, enumName: 'chat_message_status', default: 'complete' })
  status!: MessageStatus;

  /** The model that wrote a reply; null for the student's messages. */
  @Column({ type: 'varchar', length: 200, nullable: true })
  model!: string | null;

  /** Prompt and reply tokens the model reported for a reply. */
  @Column({ name: 'prompt_tokens', type: 'integer', nullable: true })
  promptTokens!: number | null;

  @Column({ name: 'reply_tokens', type: 'integer', nullable: true })
  replyTokens!: number | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
