import cors from '@fastify/cors';
import type { Config } from '../config/load.js';
import type { App } from './types.js';

/** Browsers on FRONTEND_URL may call the API with credentials. */
export async function registerCors(app: App, config: Config): Promise<void> {
  await app.register(cors, {
    origin: config.FRONTEND_URL,
    credentials: true,
    // what the routes use and read; the plugin's default allows only GET, HEAD and POST
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'If-Match', 'X-CSRF-Token', 'X-Request-Id'],
    // what a browser client may read of a response
    exposedHeaders: ['X-Request-Id', 'Retry-After', 'ETag', 'Idempotent-Replayed'],
    // browsers cap it (Chromium at 2 h); saves a preflight per request
    maxAge: 7200,
  });
}
