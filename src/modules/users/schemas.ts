import { z } from 'zod';
import { ROLES } from '../../shared/auth.js';
import { INT4_MAX } from '../../shared/http-schemas.js';
import { ENGLISH_LEVELS, LEARNING_GOALS } from './entities.js';
import { PUBLIC_PROFILE_FIELDS } from './profiles.js';

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

export const profileSchema = z.object({
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
  totalPracticeMins: z.number().int().describe('Whole minutes of totalPracticeSeconds'),
  totalPracticeSeconds: z.number().int().describe('Every finished call, added up to the second'),
  totalSessions: z.number().int(),
  streakDays: z.number().int(),
  lastSessionAt: z.date().nullable(),
  version: z.number().int().describe('Send it back with PATCH (or as If-Match)'),
});

/** GET /users/me, and every write to the profile. */
export const meSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    role: z.enum(ROLES),
    isVerified: z.boolean(),
    createdAt: z.date(),
    profile: profileSchema,
    completion: z
      .object({ complete: z.boolean(), missing: z.array(z.enum(['username', 'englishLevel'])) })
      .describe('Matchmaking needs username and englishLevel'),
  })
  .meta({ id: 'Me' });

export const publicProfileSchema = profileSchema
  .pick(Object.fromEntries(PUBLIC_PROFILE_FIELDS.map((field) => [field, true])) as { [K in (typeof PUBLIC_PROFILE_FIELDS)[number]]: true })
  .extend({ id: z.uuid(), memberSince: z.date() })
  .meta({ id: 'PublicProfile' });

export const profilePatchSchema = z.strictObject({
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

export const ifMatchHeadersSchema = z.object({ 'if-match': z.string().optional() });

export const walletBodySchema = z.strictObject({ address: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 40-hex-digit address') });

export const userParamsSchema = z.object({ id: z.uuid() });
