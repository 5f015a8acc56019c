import { parseArgs } from 'node:util';
import { z } from 'zod';
import { runWithContainer } from './cli-config.js';

/**
 * npm run admin:create -- --email ops@example.com [--password '...']
 * Promotes an existing account to admin, or creates an admin account (then --password, or
 * ADMIN_PASSWORD in the environment, is required). The only way to become admin.
 */
const { values } = parseArgs({ options: { email: { type: 'string' }, password: { type: 'string' } } });
const email = z.email().safeParse(values.email?.trim().toLowerCase());
if (!email.success) {
  console.error('parley: usage: npm run admin:create -- --email you@example.com [--password "at least 8 characters"]');
  process.exit(1);
}
const password = values.password ?? process.env.ADMIN_PASSWORD;
if (password !== undefined && (password.length < 8 || Buffer.byteLength(password) > 72)) {
  console.error('parley: the password needs 8 characters to 72 bytes');
  process.exit(1);
}

await runWithContainer(async (container) => {
  const outcome = await container.services.auth.ensureAdmin(email.data, password);
  console.log(
    { created: `created admin ${email.data}`, promoted: `promoted ${email.data} to admin`, already_admin: `${email.data} is already an admin` }[outcome],
  );
  return 0;
});
