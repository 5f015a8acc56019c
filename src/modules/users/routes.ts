import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { caller } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import { errorResponseSchema, INT4_MAX } from '../../shared/http-schemas.js';
import { ENGLISH_LEVELS, LEARNING_GOALS } from './entities.js';
import { PUBLIC_PROFILE_FIELDS, type UsersService } from './service.js';

export interface UsersRoutesOptions {
  users: UsersService;
  avatarMaxBytes: number;
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });

function isCountry(code: string): boolean {
  // DisplayNames echoes a code it does not know
  return /^[A-Z]{2}$/.test(code) && regionNames.of(code) !== code;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const profileSchema = z.object({
  username: z.string().nullable(),
  displayName: z.string().nullable(),
  avatarUrl: z.string().nullable().describe('Short-lived signed URL, or a CDN URL when STORAGE_PUBLIC_URL is set'),
  bio: z.string().nullable(),
  nativeLanguage: z.string().nullable(),
  englishLevel: z.enum(ENGLISH_LEVELS).nullable(),
  learningGoal: z.enum(LEARNING_GOALS).nullable(),
  country: z.string().nullable(),
  timezone: z.string().nullable(),
  walletAddress: z.string().nullable(),
  totalPracticeMins: z.number().int(),
  totalSessions: z.number().int(),
  streakDays: z.number().int(),
  lastSessionAt: z.date().nullable(),
  version: z.number().int().describe('Send it back with PATCH (or as If-Match)'),
});

const meSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    role: z.enum(['student', 'admin']),
    isVerified: z.boolean(),
    createdAt: z.date(),
    profile: profileSchema,
    completion: z
      .object({ complete: z.boolean(), missing: z.array(z.enum(['username', 'englishLevel'])) })
      .describe('Matchmaking needs username and englishLevel'),
  })
  .meta({ id: 'Me' });

const publicProfileSchema = profileSchema
  .pick(Object.fromEntries(PUBLIC_PROFILE_FIELDS.map((field) => [field, true])) as { [K in (typeof PUBLIC_PROFILE_FIELDS)[number]]: true })
  .extend({ id: z.uuid(), memberSince: z.date() })
  .meta({ id: 'PublicProfile' });

const patchSchema = z.strictObject({
  version: z.number().int().min(1).max(INT4_MAX).optional().describe('The version you read; or send If-Match'),
  username: z
    .string()
    .regex(/^[A-Za-z0-9_]{3,30}$/, '3-30 letters, digits or underscores')
    .nullable()
    .optional(),
  displayName: z.string().trim().min(1).max(80).nullable().optional(),
  bio: z.string().trim().max(500).nullable().optional(),
  nativeLanguage: z.string().trim().min(2).max(40).nullable().optional(),
  englishLevel: z.enum(ENGLISH_LEVELS).nullable().optional(),
  learningGoal: z.enum(LEARNING_GOALS).nullable().optional(),
  country: z.string().toUpperCase().refine(isCountry, 'an ISO 3166-1 alpha-2 country code').nullable().optional(),
  timezone: z.string().max(64).refine(isTimeZone, 'an IANA time zone such as Europe/Berlin').nullable().optional(),
});

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

const errors = (...statuses: Array<400 | 401 | 404 | 409 | 413 | 415 | 422 | 428>) =>
  Object.fromEntries(statuses.map((status) => [status, errorResponseSchema]));

export const usersRoutes: FastifyPluginAsyncZod<UsersRoutesOptions> = async (app, { users, avatarMaxBytes }) => {
  const tags = ['users'];
  const signedIn = { auth: 'user' } as const;
  const security = [{ bearer: [] }];

  app.get(
    '/users/me',
    { config: signedIn, schema: { tags, summary: 'My account and profile', security, response: { 200: meSchema, ...errors(401, 404) } } },
    async (request, reply) => {
      const me = await users.getMe(caller(request).userId);
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
        security,
        headers: z.object({ 'if-match': z.string().optional() }),
        body: patchSchema,
        response: { 200: meSchema, ...errors(400, 401, 404, 409, 428) },
      },
    },
    async (request, reply) => {
      const { version: bodyVersion, ...patch } = request.body;
      const version = bodyVersion ?? versionFromIfMatch(request.headers['if-match']);
      if (version === undefined) throw new AppError('version_required', 'Send the profile version you read, in the body or as If-Match');
      const me = await users.updateProfile(caller(request).userId, patch, version);
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
        security,
        consumes: ['multipart/form-data'],
        response: { 200: meSchema, ...errors(400, 401, 404, 413, 415, 422) },
      },
    },
    async (request) => {
      if (!request.isMultipart()) throw new AppError('unsupported_media_type', 'Send the image as multipart/form-data');
      return users.setAvatar(caller(request).userId, await readAvatarPart(request, avatarMaxBytes));
    },
  );

  app.delete(
    '/users/me/avatar',
    { config: signedIn, schema: { tags, summary: 'Remove my avatar', security, response: { 204: z.null(), ...errors(401) } } },
    async (request, reply) => {
      await users.removeAvatar(caller(request).userId);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/users/me/wallet',
    {
      config: signedIn,
      schema: {
        tags,
        summary: 'Register my wallet address (an EVM address; one account per wallet)',
        security,
        body: z.strictObject({ address: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 40-hex-digit address') }),
        response: { 200: meSchema, ...errors(400, 401, 409) },
      },
    },
    async (request) => users.setWallet(caller(request).userId, request.body.address),
  );

  app.get(
    '/users/:id/public',
    {
      config: signedIn,
      schema: {
        tags,
        summary: "Another user's public profile",
        security,
        params: z.object({ id: z.uuid() }),
        response: { 200: publicProfileSchema, ...errors(400, 401, 404) },
      },
    },
    async (request) => users.getPublic(request.params.id),
  );
};
