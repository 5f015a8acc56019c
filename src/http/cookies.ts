import { createHmac, timingSafeEqual } from 'node:crypto';
import cookie, { type UnsignResult } from '@fastify/cookie';
import type { App } from './types.js';

/**
 * Signs cookie values as `<value>.<base64url HMAC-SHA256(secret, "parley-cookie:" + value)>`:
 * base64url needs no percent-encoding in a cookie, and the prefix keeps a cookie signature
 * from ever being another HMAC of the same secret (the CSRF tokens).
 */
function cookieSigner(secret: string): { sign(value: string): string; unsign(signed: string): UnsignResult } {
  const signature = (value: string) => createHmac('sha256', secret).update(`parley-cookie:${value}`).digest('base64url');
  return {
    sign: (value: string) => `${value}.${signature(value)}`,
    unsign: (signed: string): UnsignResult => {
      const separator = signed.lastIndexOf('.');
      if (separator < 0) return { valid: false, renew: false, value: null };
      const value = signed.slice(0, separator);
      const given = Buffer.from(signed.slice(separator + 1));
      const expected = Buffer.from(signature(value));
      return given.length === expected.length && timingSafeEqual(given, expected)
        ? { valid: true, renew: false, value }
        : { valid: false, renew: false, value: null };
    },
  };
}

/** Cookies in (`request.cookies`, parsed on request) and out (`reply.setCookie`), signed with SESSION_SECRET where asked. */
export async function registerCookies(app: App, { secret }: { secret: string }): Promise<void> {
  await app.register(cookie, { secret: cookieSigner(secret) });
}
