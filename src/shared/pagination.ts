import { z } from 'zod';
import { ValidationError } from './errors.js';

/** `?limit=` (1-100, default 20) and an opaque `?cursor=` from the previous page's nextCursor. */
export const pageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});
export type PageQuery = z.infer<typeof pageQuerySchema>;

export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Keyset position: newest first by (createdAt, id), stable while rows are added. */
export interface Keyset {
  createdAt: Date;
  id: string;
}

export function encodeCursor(position: Keyset): string {
  return Buffer.from(JSON.stringify([position.createdAt.toISOString(), position.id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (!cursor) return undefined;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    // what this API hands out: a uuid, and a time PostgreSQL can compare (a forged one must not reach it)
    if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 9999 || typeof id !== 'string' || !UUID.test(id)) {
      throw new Error('bad cursor');
    }
    return { createdAt: date, id };
  } catch {
    throw new ValidationError('Invalid cursor', { fields: [{ in: 'querystring', path: 'cursor', message: 'not a cursor this API returned' }] });
  }
}

/**
 * Given `limit + 1` rows, the page and the cursor of the next one. `positionOf` says where a row
 * stands when the list is not ordered by creation time.
 */
export function toPage<T extends { createdAt: Date; id: string }, R>(
  rows: T[],
  limit: number,
  map: (row: T) => R,
  positionOf: (row: T) => Keyset = (row) => row,
): { items: R[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(map), nextCursor: rows.length > limit && last ? encodeCursor(positionOf(last)) : null };
}
