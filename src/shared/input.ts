import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ValidationError } from './errors.js';

type Where = 'params' | 'querystring' | 'body';

/** The path of the first string (value or key) holding a NUL character, or undefined. Iterative: bodies may nest deeply. */
function nulPath(root: unknown): string | undefined {
  const pending: Array<[unknown, string]> = [[root, '']];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, path] = next;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => pending.push([item, path ? `${path}.${index}` : String(index)]));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        const itemPath = path ? `${path}.${key}` : key;
        if (key.includes('\u0000')) return itemPath;
        pending.push([item, itemPath]);
      }
    }
  }
  return undefined;
}

async function refuseNul(request: FastifyRequest): Promise<void> {
  const parts: Array<[Where, unknown]> = [
    ['params', request.params],
    ['querystring', request.query],
    ['body', request.body],
  ];
  for (const [where, value] of parts) {
    const path = nulPath(value);
    if (path !== undefined) {
      throw new ValidationError(`Invalid ${where}`, {
        fields: [{ in: where, path: path.replaceAll('\u0000', '\\u0000'), message: 'must not contain NUL characters' }],
      });
    }
  }
}

/**
 * PostgreSQL cannot store a NUL character in text, so one that reaches a query is a 500.
 * Refused here, once for every route, before the route's own validation (and after its auth
 * check, which the auth guard puts first).
 */
export function registerInputGuards(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const existing = route.preValidation ? [route.preValidation].flat() : [];
    route.preValidation = [...existing, refuseNul];
  });
}
