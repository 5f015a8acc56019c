import { z } from 'zod';

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
