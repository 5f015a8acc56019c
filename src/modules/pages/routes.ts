import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { NotFoundError } from '../../shared/errors.js';
import { pageFileParamsSchema } from './schemas.js';

const PAGES = ['reset-password', 'verify-email'] as const;
const ASSETS: Record<string, string> = { 'account.js': 'text/javascript; charset=utf-8', 'account.css': 'text/css; charset=utf-8' };

/**
 * The small pages the links of account e-mails open when no front end of its own is
 * configured (FRONTEND_RESET_PASSWORD_URL, FRONTEND_VERIFY_EMAIL_URL). GET only shows the page:
 * the token is used by the POST the page sends when the user acts, never by opening the link.
 */
export const pagesRoutes: FastifyPluginAsyncZod<{ folder: string }> = async (app, { folder }) => {
  const read = (name: string) => readFile(path.join(folder, name), 'utf8');
  const html = Object.fromEntries(await Promise.all(PAGES.map(async (page) => [page, await read(`${page}.html`)] as const)));
  const assets = Object.fromEntries(await Promise.all(Object.keys(ASSETS).map(async (name) => [name, await read(name)] as const)));
  const hidden = { hide: true } as const;

  for (const page of PAGES) {
    app.get(`/${page}`, { schema: hidden }, async (_request, reply) =>
      // the URL holds a token: no cache may keep the page
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html[page]),
    );
  }
  app.get('/pages/:file', { schema: { ...hidden, params: pageFileParamsSchema } }, async (request, reply) => {
    const type = Object.hasOwn(ASSETS, request.params.file) ? ASSETS[request.params.file] : undefined;
    if (!type) throw new NotFoundError('Page file');
    return reply.type(type).send(assets[request.params.file]);
  });
};
