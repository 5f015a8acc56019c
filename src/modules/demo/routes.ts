import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { NotFoundError } from '../../shared/errors.js';
import { demoFileParamsSchema } from './schemas.js';

const FILES: Record<string, string> = { 'demo.js': 'text/javascript; charset=utf-8', 'demo.css': 'text/css; charset=utf-8' };

/** The demo page at /demo: a working client for developers, and the subject of the browser test. */
export const demoRoutes: FastifyPluginAsyncZod<{ folder: string }> = async (app, { folder }) => {
  const page = await readFile(path.join(folder, 'index.html'), 'utf8');
  const assets = Object.fromEntries(
    await Promise.all(Object.keys(FILES).map(async (name) => [name, await readFile(path.join(folder, name), 'utf8')] as const)),
  );
  const hidden = { hide: true } as const;

  app.get('/demo', { schema: hidden }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/demo/', { schema: hidden }, async (_request, reply) => reply.redirect('/demo', 308));
  app.get('/demo/:file', { schema: { ...hidden, params: demoFileParamsSchema } }, async (request, reply) => {
    const type = Object.hasOwn(FILES, request.params.file) ? FILES[request.params.file] : undefined;
    if (!type) throw new NotFoundError('Demo file');
    return reply.type(type).send(assets[request.params.file]);
  });
};
