import { buffer } from 'node:stream/consumers';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { readFilePart, refuseDeclaredOver, withFilePart } from '../../http/multipart.js';
import { created, errorResponses, idParamsSchema, noContent, noContentSchema } from '../../shared/responses.js';
import type { LmsFilesService } from './files.js';
import { THUMBNAIL_WIDTH } from './files.js';
import { attachmentParamsSchema, attachmentSchema, attachmentsSchema, attachmentUrlSchema } from './files-schemas.js';
import { courseSchema } from './schemas.js';

export interface LmsFileRoutesOptions {
  files: LmsFilesService;
  thumbnailMaxBytes: number;
  attachmentMaxBytes: number;
}

/** Course thumbnails and lesson attachments. */
export const lmsFileRoutes: FastifyPluginAsyncZod<LmsFileRoutesOptions> = async (app, { files, thumbnailMaxBytes, attachmentMaxBytes }) => {
  const tags = ['courses'];
  const adminOnly = { auth: 'admin' } as const;
  const anyone = { auth: 'optional' } as const;
  const viewer = (request: { auth: { userId: string; role: string } | null }) => ({
    userId: request.auth?.userId ?? null,
    admin: request.auth?.role === 'admin',
  });

  app.post(
    '/courses/:id/thumbnail',
    {
      config: adminOnly,
      onRequest: refuseDeclaredOver(thumbnailMaxBytes),
      schema: {
        tags,
        summary: 'Upload the course thumbnail (admin; multipart/form-data, one file field)',
        description: `JPEG, PNG or WebP, recognised by content; at most ${thumbnailMaxBytes} bytes; stored as a ${THUMBNAIL_WIDTH}x${(THUMBNAIL_WIDTH * 9) / 16} WebP (cropped to 16:9), replacing the previous one.`,
        params: idParamsSchema,
        consumes: ['multipart/form-data'],
        response: { 200: courseSchema, ...errorResponses(400, 401, 403, 404, 413, 415, 422, 503) },
      },
    },
    async (request) => files.setThumbnail(request.params.id, await readFilePart(request, thumbnailMaxBytes)),
  );

  app.delete(
    '/courses/:id/thumbnail',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Remove the course thumbnail (admin)',
        params: idParamsSchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await files.removeThumbnail(request.params.id);
      return noContent(reply);
    },
  );

  app.post(
    '/lessons/:id/attachments',
    {
      config: adminOnly,
      onRequest: refuseDeclaredOver(attachmentMaxBytes),
      schema: {
        tags,
        summary: 'Attach a PDF to a lesson (admin; multipart/form-data, one file field)',
        description: `A PDF, recognised by content; at most ${attachmentMaxBytes} bytes. Private: downloaded through short-lived URLs by those who may open the lesson.`,
        params: idParamsSchema,
        consumes: ['multipart/form-data'],
        response: { 201: attachmentSchema, ...errorResponses(400, 401, 403, 404, 413, 415, 503) },
      },
    },
    async (request, reply) =>
      created(
        reply,
        // whole in memory (at most attachmentMaxBytes), read as soon as the part starts
        await withFilePart(request, attachmentMaxBytes, async ({ filename, stream }) =>
          files.addAttachment(request.params.id, { fileName: filename, bytes: await buffer(stream) }),
        ),
      ),
  );

  app.get(
    '/lessons/:id/attachments',
    {
      config: anyone,
      schema: {
        tags,
        summary: 'The attachments of a lesson, oldest first',
        description: 'For the enrolled and admins; for everyone in a free preview of a published course. Others get 403 `not_enrolled`.',
        params: idParamsSchema,
        response: { 200: attachmentsSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => ({ items: await files.listAttachments(viewer(request), request.params.id) }),
  );

  app.get(
    '/lessons/:id/attachments/:attachmentId',
    {
      config: anyone,
      schema: {
        tags,
        summary: 'A short-lived URL to download an attachment',
        description: 'For whoever may list the attachments of the lesson. The URL works until `expiresAt` (STORAGE_URL_TTL).',
        params: attachmentParamsSchema,
        response: { 200: attachmentUrlSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => files.attachmentUrl(viewer(request), request.params.id, request.params.attachmentId),
  );

  app.delete(
    '/lessons/:id/attachments/:attachmentId',
    {
      config: adminOnly,
      schema: {
        tags,
        summary: 'Delete an attachment of a lesson (admin)',
        params: attachmentParamsSchema,
        response: { 204: noContentSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await files.deleteAttachment(request.params.id, request.params.attachmentId);
      return noContent(reply);
    },
  );
};
