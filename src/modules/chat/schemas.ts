import { z } from 'zod';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';
import { MESSAGE_ROLES, MESSAGE_STATUSES } from './entities.js';

/** An Ollama model name, as the proxy takes it. */
export const modelNameSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'an Ollama model name such as llama3.2:3b');

export const threadSchema = z
  .object({
    id: z.uuid(),
    title: z.string(),
    model: z.string(),
    topic: z.string().nullable(),
    messageCount: z.number().int(),
    createdAt: z.date(),
    updatedAt: z.date().describe('The last message’s time: the list is ordered by it'),
  })
  .meta({ id: 'ChatSession' });

export const chatMessageSchema = z
  .object({
    id: z.uuid(),
    sessionId: z.uuid(),
    role: z.enum(MESSAGE_ROLES),
    content: z.string(),
    status: z
      .enum(MESSAGE_STATUSES)
      .describe('A reply is `streaming` while the model writes it; `interrupted` or `failed` when it was cut off (its text is what came)'),
    model: z.string().nullable(),
    promptTokens: z.number().int().nullable(),
    replyTokens: z.number().int().nullable(),
    createdAt: z.date(),
  })
  .meta({ id: 'ChatMessage' });

export const threadPageSchema = pageSchema(threadSchema);
export const messagePageSchema = pageSchema(chatMessageSchema);

export const createThreadBodySchema = z.strictObject({
  title: z.string().trim().min(1).max(200).optional(),
  model: modelNameSchema.optional().describe('Unset: the server’s AI_DEFAULT_MODEL'),
  topic: z.string().trim().min(1).max(200).optional().describe('What to talk about; the partner steers the conversation there'),
});

export const messagesQuerySchema = pageQuerySchema.extend({ sessionId: z.uuid() });

/** The text of one message, bounded by AI_MESSAGE_MAX_CHARS. */
export function messageTextSchema(maxChars: number) {
  return z
    .string()
    .max(maxChars)
    .refine((text) => text.trim().length > 0, 'not empty');
}

export function saveMessageBodySchema(maxChars: number) {
  return z.strictObject({ sessionId: z.uuid(), role: z.enum(MESSAGE_ROLES), content: messageTextSchema(maxChars) });
}

export function chatStreamInputSchema(maxChars: number) {
  return z.strictObject({
    sessionId: z.uuid().optional().describe('The conversation; unset: a new one, named in the `start` event'),
    message: messageTextSchema(maxChars),
  });
}

export const chatStreamResponse = {
  description: [
    'Server-Sent Events, each an unnamed event whose data is JSON with a `type`, and whose `id` is `<replyId>:<n>`:',
    '`start` `{ sessionId, userMessageId, messageId, session }`, then `token` `{ text }` as the model writes, then `done` `{ messageId, content, promptTokens, replyTokens }` once the reply is saved,',
    'or `error` `{ code, message }` (`ai_unavailable` when the model broke off, `reply_interrupted` when the server stopped, `reply_too_long`).',
    'Comments (`: heartbeat`) keep the connection open. A client that reconnects with `Last-Event-ID` (EventSource does) gets the rest of the same reply and nothing twice: the message is not sent again;',
    'one that had the last event already gets 204 (EventSource then stops reconnecting).',
  ].join(' '),
  content: { 'text/event-stream': { schema: z.any() } },
};

/**
 * An anonymous session id a client chose (GET /ws's `x-session-id`, or `sessionId`): it is the
 * session's only secret, so it must be long and look random: 32 to 128 characters of
 * A-Z a-z 0-9 _ -, at least 8 of them different. A UUID v4, or 24 random bytes in base64url,
 * passes; "aaaa…" or "abababab…" does not. Ids the server issues are 256 random bits.
 */
export const anonymousSessionIdSchema = z
  .string()
  .min(32)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only')
  .refine((id) => new Set(id).size >= 8, 'too regular to be a secret: use a UUID v4 or 24 random bytes in base64url');

/** The frames a /ws client sends: JSON text, one object per frame. */
export function chatClientFrameSchema(maxChars: number) {
  return z.discriminatedUnion('type', [
    z
      .strictObject({
        type: z.literal('authenticate'),
        token: z.string().min(1).max(4096).optional(),
        anonymous: z.literal(true).optional(),
        sessionId: anonymousSessionIdSchema.optional(),
      })
      .refine((frame) => (frame.token === undefined) !== (frame.anonymous === undefined), {
        message: 'send either token (an access token) or anonymous: true',
        path: ['token'],
      }),
    z.strictObject({
      type: z.literal('message'),
      content: messageTextSchema(maxChars),
      chatId: z.uuid().optional(),
    }),
    z.strictObject({ type: z.literal('ping') }),
  ]);
}

export type ChatClientFrame = z.infer<ReturnType<typeof chatClientFrameSchema>>;
