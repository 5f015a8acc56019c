import Fastify from 'fastify';

/** The baseline: bare Fastify, no plugins, no logging, the same /health body as Parley. */
const app = Fastify({ logger: false });
app.get('/health', async () => ({ status: 'ok', timestamp: new Date().toISOString() }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
