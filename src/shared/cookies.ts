/**
 * The few cookies Parley sets (the browser session, the OAuth state): read from the Cookie
 * header and written as Set-Cookie, by RFC 6265's rules. Values are base64url, never quoted.
 */

/** A cookie's value by name; the first one wins when a name repeats (the most specific path comes first). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const separator = pair.indexOf('=');
    if (separator < 0) continue;
    if (pair.slice(0, separator).trim() !== name) continue;
    const value = pair.slice(separator + 1).trim();
    return value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
  }
  return undefined;
}

export interface CookieOptions {
  maxAgeSeconds: number;
  secure: boolean;
  sameSite: 'Lax' | 'Strict';
}

/** HttpOnly and Path=/ always (the `__Host-` prefix requires that path, Secure and no Domain). */
export function serializeCookie(name: string, value: string, { maxAgeSeconds, secure, sameSite }: CookieOptions): string {
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', `SameSite=${sameSite}`, `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`];
  if (maxAgeSeconds <= 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

/** The Set-Cookie that makes a browser forget the cookie. */
export function clearedCookie(name: string, secure: boolean): string {
  return serializeCookie(name, '', { maxAgeSeconds: 0, secure, sameSite: 'Lax' });
}

/** Adds a Set-Cookie header, keeping those already set on the reply. */
export function appendSetCookie(reply: { getHeader(name: string): unknown; header(name: string, value: unknown): unknown }, cookie: string): void {
  const existing = reply.getHeader('set-cookie') as string | string[] | undefined;
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
  reply.header('set-cookie', [...list, cookie]);
}
