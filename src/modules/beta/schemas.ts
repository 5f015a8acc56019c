import { z } from 'zod';
import { pageQuerySchema, pageSchema } from '../../shared/pagination.js';

const inviteKey = z.string().trim().min(6).max(32).describe('An invite key such as PARLEY-AB3D-7KQ2 (case-insensitive)');

export const inviteKeySchema = z
  .object({
    key: z.string(),
    status: z.enum(['unused', 'used', 'expired']),
    email: z.string().nullable(),
    expiresAt: z.date().nullable(),
    usedAt: z.date().nullable(),
    usedBy: z.uuid().nullable(),
    createdAt: z.date(),
  })
  .meta({ id: 'InviteKey' });

export const createInviteKeyBodySchema = z.strictObject({
  email: z.email().optional().describe('Only this address may use the key'),
  expiresInDays: z.number().int().min(1).max(365).optional(),
});

export const createInviteKeysBodySchema = createInviteKeyBodySchema.extend({ count: z.number().int().min(1).max(100) });

export const inviteKeyListSchema = z.object({ items: z.array(inviteKeySchema) });

export const inviteKeyParamsSchema = z.object({ key: inviteKey });

export const checkInviteKeyBodySchema = z.strictObject({ key: inviteKey });

export const verifyInviteKeyBodySchema = z.strictObject({ key: inviteKey, email: z.email() });

export const inviteKeyCheckSchema = z.object({ valid: z.boolean(), reason: z.enum(['not_found', 'used', 'expired', 'email_mismatch']).optional() });

export const betaCheckSchema = z.object({ valid: z.boolean().describe('The key exists, is unused and unexpired') }).meta({ id: 'BetaKeyCheck' });

export const betaUsersQuerySchema = pageQuerySchema.extend({
  email: z.email().max(254).trim().toLowerCase().optional().describe("Only this account's sign-up (whatever the case)"),
});

export const betaUserSchema = z
  .object({
    key: z.string(),
    userId: z.uuid(),
    email: z.string().nullable().describe("The account's e-mail now; null once the account is deleted"),
    invitedEmail: z.string().nullable().describe('The address the key was bound to, if any'),
    signedUpAt: z.date(),
  })
  .meta({ id: 'BetaUser' });

export const betaUserPageSchema = pageSchema(betaUserSchema).extend({ total: z.number().int() });
