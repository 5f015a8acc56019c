import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { Config } from '../config/load.js';
import { documentTransform } from '../shared/openapi.js';
import type { App } from './types.js';

/** The OpenAPI document (/openapi.json) built from the routes' zod schemas, and Swagger UI at /docs. */
export async function registerOpenApi(app: App, { config, tags }: { config: Config; tags: Array<{ name: string; description: string }> }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Parley API',
        version: '0.1.0',
        description:
          'Real-time speaking practice backend. Errors are always `{ error: { code, message, details? } }`. ' +
          'Not described here, as OpenAPI cannot: Socket.io (matchmaking and signaling, under `/socket.io/`) and the AI chat WebSocket `GET /ws` ' +
          '(JSON frames: authenticate, message, then start, token… done); SPECS.md documents both.',
      },
      servers: [{ url: config.APP_URL }],
      tags,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: documentTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // as for the API's own CSP: no https upgrade outside production, where /docs is served over http
    transformStaticCSP: (header) => (config.NODE_ENV === 'production' ? header : header.replace(/\s*upgrade-insecure-requests;?/, '')),
  });
  app.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger());
}
