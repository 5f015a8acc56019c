import { z } from 'zod';
import type { JobDefinition } from '../../infra/jobs.js';
import type { AuthService } from './service.js';

export const PASSWORD_RESET_JOB = 'auth.password-reset';

export const passwordResetPayloadSchema = z.object({ email: z.string(), ip: z.string(), userAgent: z.string().nullable() });
export type PasswordResetPayload = z.infer<typeof passwordResetPayloadSchema>;

export function authJobs(auth: AuthService): [JobDefinition<PasswordResetPayload>, JobDefinition<Record<string, never>>] {
  return [
    {
      // The lookup, the token and the mail of a forgot-password request, after its response.
      // Removed once done: its payload is someone's e-mail address.
      name: PASSWORD_RESET_JOB,
      attempts: 3,
      backoffMs: 5_000,
      removeOnComplete: true,
      handle: async (payload) => {
        const { email, ip, userAgent } = passwordResetPayloadSchema.parse(payload);
        await auth.sendResetLink(email, { ip, userAgent });
      },
    },
    {
      name: 'auth.purge-expired',
      schedule: { cron: '41 * * * *' },
      handle: async (_payload, { logger }) => {
        const purged = await auth.purgeExpired();
        logger.info(purged, 'purged expired sessions and tokens');
      },
    },
  ];
}
