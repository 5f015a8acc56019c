import { fastifySSE } from '@fastify/sse';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { principal } from '../../shared/auth.js';
import { ValidationError } from '../../shared/errors.js';
import { created, errorResponses, noContentSchema } from '../../shared/responses.js';
import type { ReplyEvent } from './replies.js';
import {
  chatMessageSchema,
  chatStreamInputSchema,
  chatStreamResponse,
  createThreadBodySchema,
  messagePageSchema,
  messagesQuerySchema,
  saveMessageBodySchema,
  threadPageSchema,
  threadSchema,
} from './schemas.js';
import type { ChatService } from './service.js';
import { pageQuerySchema } from '../../shared/pagination.js';

export interface ChatRouteOptions {
  chat: ChatService;
  maxMessageChars: number;
  heartbeatMs: number;
  /** Aborts when the server begins to stop: open streams end. */
  closing: AbortSignal;
}

/** A reply event as clients receive it, over SSE and /ws alike: the event without its number. */
export function replyFrame(event: ReplyEvent): Record<string, unknown> {
  const { seq: _seq, ...frame } = event;
  return frame;
}

const EVENT_ID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,9})$/i;

/** Where a reconnecting client stopped: the `<replyId>:<n>` of the last event it had. */
function resumePoint(request: FastifyRequest): { replyId: string; seq: number } | null {
  const header = request.headers['last-event-id'];
  if (header === undefined || header === '') return null;
  const match = typeof header === 'string' ? EVENT_ID.exec(header) : null;
  if (!match)
    throw new ValidationError('Last-Event-ID is not an event id this server sent', {
      fields: [{ in: 'headers', path: 'last-event-id', message: 'expected <replyId>:<n>' }],
    });
  return { replyId: match[1]!.toLowerCase(), seq: Number(match[2]) };
}

/** Document 001's chat backend: sessions (threads) and the reply stream. */
export const chatRoutes: FastifyPluginAsyncZod<ChatRouteOptions> = async (app, { chat, maxMessageChars, heartbeatMs, closing }) => {
  await app.register(fastifySSE, { heartbeatInterval: heartbeatMs });
  const tags = ['ai'];
  // document 001's front end sends its own token here: taken as is when ACCEPT_EXTERNAL_TOKENS is on
  const signedIn = { auth: 'user', externalTokens: true } as const;

  app.get(
    '/api/sessions/list',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'My conversations with the AI partner, most recent first',
        querystring: pageQuerySchema,
        response: { 200: threadPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => chat.listThreads({ userId: principal(request).userId }, request.query),
  );

  app.post(
    '/api/sessions/create',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Start a conversation with the AI partner',
        body: createThreadBodySchema,
        response: { 201: threadSchema, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => created(reply, await chat.createThread({ userId: principal(request).userId }, request.body)),
  );

  app.get(
    '/api/sessions/messages',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'The messages of one of my conversations, oldest first',
        querystring: messagesQuerySchema,
        response: { 200: messagePageSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => chat.messages({ userId: principal(request).userId }, request.query.sessionId, request.query),
  );

  app.post(
    '/api/sessions/save-message',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Add a message to one of my conversations (without asking the partner)',
        body: saveMessageBodySchema(maxMessageChars),
        response: { 201: chatMessageSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => created(reply, await chat.saveMessage({ userId: principal(request).userId }, request.body)),
  );

  /** Starts (or resumes) a reply and streams it as SSE until it is done. */
  const streamReply = async (request: FastifyRequest, reply: FastifyReply, input: { sessionId?: string | undefined; message: string }) => {
    const owner = { userId: principal(request).userId };
    // the client leaving or the server stopping ends the stream; not AbortSignal.any, which on
    // Node 20 keeps a little of every request alive on the server-long `closing` signal
    const gone = new AbortController();
    const stop = () => gone.abort();
    closing.addEventListener('abort', stop, { once: true });
    reply.raw.once('close', () => {
      closing.removeEventListener('abort', stop);
      stop();
    });
    if (closing.aborted) stop();
    const signal = gone.signal;
    const resume = resumePoint(request);
    let replyId: string;
    let events: AsyncGenerator<ReplyEvent>;
    let start: Record<string, unknown> | null = null;
    if (resume) {
      replyId = resume.replyId;
      events = await chat.resumeReply(owner, replyId, resume.seq, signal);
    } else {
      const handle = await chat.startReply(owner, { threadId: input.sessionId, content: input.message });
      replyId = handle.replyId;
      events = handle.events(0, signal);
      start = { type: 'start', sessionId: handle.thread.id, userMessageId: handle.userMessage.id, messageId: handle.replyId, session: handle.thread };
    }
    async function* frames() {
      if (start) yield { id: `${replyId}:0`, data: start };
      for await (const event of events) yield { id: `${replyId}:${event.seq}`, data: replyFrame(event) };
    }
    await reply.sse.send(frames());
    // Nothing to send: a reconnect after the reply's last event (EventSource reconnects whenever a
    // stream ends). 204 tells it to stop; while the server stops, an empty stream has it reconnect
    // (to another instance).
    if (!reply.raw.headersSent) {
      if (!closing.aborted) return reply.code(204).send();
      reply.sse.sendHeaders();
    }
  };

  const streamSchema = (summary: string) => ({
    tags,
    summary,
    description:
      'Saves the message, then streams the partner’s reply token by token; the reply is saved when complete, and keeps going if the connection drops. The partner speaks at the student’s English level and keeps to the conversation’s topic.',
    response: { 200: chatStreamResponse, 204: noContentSchema, ...errorResponses(400, 401, 404, 409, 422, 429, 503) },
  });

  app.get(
    '/api/chat-stream',
    {
      sse: 'manual',
      config: signedIn,
      schema: { ...streamSchema('Talk to the AI partner: the reply as Server-Sent Events'), querystring: chatStreamInputSchema(maxMessageChars) },
    },
    async (request, reply) => streamReply(request, reply, request.query),
  );

  app.post(
    '/api/chat-stream',
    {
      sse: 'manual',
      config: signedIn,
      schema: {
        ...streamSchema('Talk to the AI partner (message in the body): the reply as Server-Sent Events'),
        body: chatStreamInputSchema(maxMessageChars),
      },
    },
    async (request, reply) => streamReply(request, reply, request.body),
  );
};
