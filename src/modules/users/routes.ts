import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { readFilePart, refuseDeclaredOver } from '../../http/multipart.js';
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
      onRequest: refuseDeclaredOver(avatarMaxBytes),
      schema: {
        tags,
        summary: 'Upload my avatar (multipart/form-data, one file field)',
        description: `JPEG, PNG or WebP, recognised by content; at most ${avatarMaxBytes} bytes; stored as a 400x400 WebP.`,

        consumes: ['multipart/form-data'],
        response: { 200: meSchema, ...errorResponses(400, 401, 404, 413, 415, 422) },
      },
    },
    async (request) => profiles.setAvatar(caller(request).userId, await readFilePart(request, avatarMaxBytes)),
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
