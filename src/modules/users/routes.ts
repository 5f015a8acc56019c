import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import { INT4_MAX } from '../../shared/http-schemas.js';
import { errorResponses, noContent, noContentSchema } from '../../shared/responses.js';
import type { ProfilesService } from './profiles.js';
import { ifMatchHeadersSchema, meSchema, profilePatchSchema, publicProfileSchema, userParamsSchema, walletBodySchema } from './schemas.js';

export interface UsersRoutesOptions {
  profiles: ProfilesService;
  avatarMaxBytes: number;
}

/** If-Match: "3", W/"3" or 3 */
function versionFromIfMatch(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const match = /^(?:W\/)?"?(\d{1,10})"?$/.exec(header.trim());
  if (!match || Number(match[1]) > INT4_MAX)
    throw new AppError('validation_failed', 'If-Match must be the profile version', {
      fields: [{ in: 'headers', path: 'if-match', message: 'expected "<version>"' }],
    });
  return Number(match[1]);
}

/** Room for the part headers and boundaries around the file in a multipart body. */
const MULTIPART_OVERHEAD_BYTES = 16 * 1024;

const NO_FILE = { fields: [{ in: 'body', path: 'file', message: 'send exactly one part, a file named "file"' }] };

/**
 * The one file part of an avatar upload. A form of another shape, or one the parser cannot
 * read (no boundary, cut short, malformed part headers), is the client's 400, never a 500.
 */
async function readAvatarPart(request: FastifyRequest, maxBytes: number): Promise<Buffer> {
  try {
    // one byte over the limit is enough to know, and busboy stops there
    const file = await request.file({ limits: { fileSize: maxBytes + 1, files: 1, fields: 0 } });
    if (!file) throw new AppError('validation_failed', 'No file in the upload', NO_FILE);
    // Counted here rather than by toBuffer, which waits for the end of the part (of a chunked
    // body that may never end) before it reports the overflow.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of file.file as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw new AppError('payload_too_large', `The file is larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } catch (error) {
    if (error instanceof AppError) throw error;
    const { code, statusCode } = error as { code?: string; statusCode?: number };
    if (code === 'FST_FIELDS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT')
      throw new AppError('validation_failed', 'The upload must hold one file part and nothing else', NO_FILE);
    if (typeof statusCode === 'number' && statusCode < 500) throw error;
    throw new AppError('validation_failed', 'Malformed multipart/form-data body', { fields: [{ in: 'body', path: '', message: (error as Error).message }] });
  }
}

export const usersRoutes: FastifyPluginAsyncZod<UsersRoutesOptions> = async (app, { profiles, avatarMaxBytes }) => {
  const tags = ['users'];
  const signedIn = { auth: 'user' } as const;

  app.get(
    '/users/me',
    { config: signedIn, schema: { tags, summary: 'My account and profile', response: { 200: meSchema, ...errorResponses(401, 404) } } },
    async (request, reply) => {
      const me = await profiles.getMe(caller(request).userId);
      reply.header('etag', `"${me.profile.version}"`);
      return me;
    },
  );

  app.patch(
    '/users/me',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Update my profile (optimistic: send the version you read)',
        description: 'A stale version answers 409 version_conflict with details.currentVersion, and nothing is written.',

        headers: ifMatchHeadersSchema,
        body: profilePatchSchema,
        response: { 200: meSchema, ...errorResponses(400, 401, 404, 409, 428) },
      },
    },
    async (request, reply) => {
      const { version: bodyVersion, ...patch } = request.body;
      const version = bodyVersion ?? versionFromIfMatch(request.headers['if-match']);
      if (version === undefined) throw new AppError('version_required', 'Send the profile version you read, in the body or as If-Match');
      const me = await profiles.updateProfile(caller(request).userId, patch, version);
      reply.header('etag', `"${me.profile.version}"`);
      return me;
    },
  );

  app.post(
    '/users/me/avatar',
    {
      config: signedIn,
      // a declared length the file cannot fit in is refused before a byte of it is read
      onRequest: async (request) => {
        if (Number(request.headers['content-length']) > avatarMaxBytes + MULTIPART_OVERHEAD_BYTES)
          throw new AppError('payload_too_large', `The upload is larger than ${avatarMaxBytes} bytes`);
      },
      schema: {
        tags,
        summary: 'Upload my avatar (multipart/form-data, one file field)',
        description: `JPEG, PNG or WebP, recognised by content; at most ${avatarMaxBytes} bytes; stored as a 400x400 WebP.`,

        consumes: ['multipart/form-data'],
        response: { 200: meSchema, ...errorResponses(400, 401, 404, 413, 415, 422) },
      },
    },
    async (request) => {
      if (!request.isMultipart()) throw new AppError('unsupported_media_type', 'Send the image as multipart/form-data');
      return profiles.setAvatar(caller(request).userId, await readAvatarPart(request, avatarMaxBytes));
    },
  );

  app.delete(
    '/users/me/avatar',
    { config: signedIn, schema: { tags, summary: 'Remove my avatar', response: { 204: noContentSchema, ...errorResponses(401) } } },
    async (request, reply) => {
      await profiles.removeAvatar(caller(request).userId);
      return noContent(reply);
    },
  );

  app.post(
    '/users/me/wallet',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Register my wallet address (an EVM address; one account per wallet)',

        body: walletBodySchema,
        response: { 200: meSchema, ...errorResponses(400, 401, 409) },
      },
    },
    async (request) => profiles.setWallet(caller(request).userId, request.body.address),
  );

  app.get(
    '/users/:id/public',
    {
      config: signedIn,
      schema: {
        tags,
        summary: "Another user's public profile",

        params: userParamsSchema,
        response: { 200: publicProfileSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => profiles.getPublic(request.params.id),
  );
};
