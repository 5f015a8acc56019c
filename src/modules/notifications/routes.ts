import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { errorResponses, idParamsSchema, noContent, noContentSchema } from '../../shared/responses.js';
import {
  broadcastBodySchema,
  broadcastStartedSchema,
  deviceBodySchema,
  deviceDeleteBodySchema,
  deviceSchema,
  notificationPageSchema,
  notificationSchema,
  notificationsQuerySchema,
  preferencesBodySchema,
  preferencesSchema,
  readAllSchema,
} from './schemas.js';
import type { NotificationsService } from './service.js';

export const notificationsRoutes: FastifyPluginAsyncZod<{ notifications: NotificationsService }> = async (app, { notifications }) => {
  const tags = ['notifications'];
  const config = { auth: 'user' } as const;

  app.post(
    '/notifications/device',
    {
      config,
      schema: {
        tags,
        summary: "Register or update the FCM token of this session's device (call at every app start: tokens rotate)",
        body: deviceBodySchema,
        response: { 200: deviceSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => notifications.registerDevice(caller(request), request.body),
  );

  app.delete(
    '/notifications/device',
    {
      config,
      schema: {
        tags,
        summary: "Forget this device's FCM token (no more pushes to it); nothing registered is fine",
        body: deviceDeleteBodySchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      await notifications.removeDevice(caller(request).userId, request.body.deviceId);
      return noContent(reply);
    },
  );

  app.get(
    '/notifications',
    {
      config,
      schema: {
        tags,
        summary: 'My notifications, newest first, with the unread count',
        querystring: notificationsQuerySchema,
        response: { 200: notificationPageSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => notifications.list(caller(request).userId, request.query),
  );

  // Registered before /notifications/:id/read so that "read-all" is never taken for an id.
  app.patch(
    '/notifications/read-all',
    { config, schema: { tags, summary: 'Mark all my notifications read', response: { 200: readAllSchema, ...errorResponses(401) } } },
    async (request) => notifications.markAllRead(caller(request).userId),
  );

  app.patch(
    '/notifications/:id/read',
    {
      config,
      schema: {
        tags,
        summary: 'Mark one of my notifications read',
        params: idParamsSchema,
        response: { 200: notificationSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => notifications.markRead(caller(request).userId, request.params.id),
  );

  app.delete(
    '/notifications/:id',
    {
      config,
      schema: { tags, summary: 'Delete one of my notifications', params: idParamsSchema, response: { 204: noContentSchema, ...errorResponses(400, 401, 404) } },
    },
    async (request, reply) => {
      await notifications.delete(caller(request).userId, request.params.id);
      return noContent(reply);
    },
  );

  app.get(
    '/notifications/preferences',
    {
      config,
      schema: {
        tags,
        summary: 'My notification preferences: channels per type, and quiet hours',
        response: { 200: preferencesSchema, ...errorResponses(401) },
      },
    },
    async (request) => notifications.preferences(caller(request).userId),
  );

  app.put(
    '/notifications/preferences',
    {
      config,
      schema: {
        tags,
        summary: 'Change my preferences (the types and channels given; system notices cannot be turned off)',
        body: preferencesBodySchema,
        response: { 200: preferencesSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => notifications.updatePreferences(caller(request).userId, request.body),
  );

  app.post(
    '/notifications/preferences/reset',
    {
      config,
      schema: { tags, summary: 'Back to the default preferences', response: { 200: preferencesSchema, ...errorResponses(401) } },
    },
    async (request) => notifications.resetPreferences(caller(request).userId),
  );

  app.post(
    '/admin/notifications/broadcast',
    {
      config: { auth: 'admin', idempotent: true },
      schema: {
        tags: ['admin'],
        summary: 'Send a system notice to everyone, one level, or chosen users (in-app and push; a job, see its progress)',
        body: broadcastBodySchema,
        response: { 202: broadcastStartedSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { title, body, audience, level, userIds } = request.body;
      const started = await notifications.broadcast(caller(request).userId, {
        title,
        body,
        audience: audience === 'level' ? { kind: 'level', level: level! } : audience === 'userIds' ? { kind: 'userIds', userIds: userIds! } : { kind: 'all' },
      });
      return reply.status(202).send(started);
    },
  );
};
