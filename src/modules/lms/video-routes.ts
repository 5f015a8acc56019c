import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { refuseDeclaredOver, withFilePart } from '../../http/multipart.js';
import { caller } from '../../shared/auth.js';
import { errorResponses, idParamsSchema } from '../../shared/responses.js';
import { mediaParamsSchema, playlistResponse, variantParamsSchema, videoUploadSchema, videoUrlSchema } from './schemas.js';
import { viewer } from './routes.js';
import type { VideoService } from './video.js';

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';

/** Uploading a lesson's video, and playing it back through signed playlists. */
export const videoRoutes: FastifyPluginAsyncZod<{ video: VideoService; maxBytes: number }> = async (app, { video, maxBytes }) => {
  const tags = ['courses'];

  app.post(
    '/lessons/:id/video',
    {
      config: { auth: 'admin' },
      onRequest: refuseDeclaredOver(maxBytes),
      schema: {
        tags,
        summary: "Upload a lesson's video (admin; multipart/form-data, one file field)",
        description:
          `Streamed to storage as it arrives (at most ${maxBytes} bytes; the type is checked by the first bytes: MP4, MOV, WebM, MKV, AVI, MPEG-TS/PS, FLV), ` +
          'then transcoded to HLS by a background job whose progress shows on the lesson and at GET /admin/jobs/:id. Uploading again replaces the video and stops the earlier job. ' +
          'The whole upload must arrive within HTTP_REQUEST_TIMEOUT.',
        params: idParamsSchema,
        consumes: ['multipart/form-data'],
        response: { 202: videoUploadSchema, ...errorResponses(400, 401, 403, 404, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const upload = await withFilePart(request, maxBytes, ({ stream }) => video.upload(caller(request).userId, request.params.id, stream));
      return reply.status(202).send(upload);
    },
  );

  app.get(
    '/lessons/:id/video-url',
    {
      config: { auth: 'optional' },
      schema: {
        tags,
        summary: "A playback URL for a lesson's video (HLS)",
        description:
          'For the enrolled, admins, and anyone on a free preview of a published course. The URL is the master playlist; every variant playlist and segment it leads to loads for its holder until `expiresAt` (VIDEO_URL_TTL), and stops at the next playlist load once access ends (a refund).',
        params: idParamsSchema,
        response: { 200: videoUrlSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => video.videoUrl(request.params.id, viewer(request)),
  );

  app.get(
    '/media/lessons/:lessonId/:token/master.m3u8',
    {
      schema: {
        tags,
        summary: 'The master playlist of a playback URL (signed path; no other credential)',
        params: mediaParamsSchema,
        response: { 200: playlistResponse, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) =>
      reply
        .type(PLAYLIST_TYPE)
        .header('cache-control', 'private, max-age=60')
        .send(await video.masterPlaylist(request.params.lessonId, request.params.token)),
  );

  app.get(
    '/media/lessons/:lessonId/:token/:rendition/index.m3u8',
    {
      schema: {
        tags,
        summary: 'A variant playlist of a playback URL, its segments signed until the URL expires',
        params: variantParamsSchema,
        response: { 200: playlistResponse, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) =>
      reply
        .type(PLAYLIST_TYPE)
        .header('cache-control', 'private, no-store')
        .send(await video.variantPlaylist(request.params.lessonId, request.params.token, request.params.rendition)),
  );
};
