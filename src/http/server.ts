import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../config/load.js';
import { deferredChildLoggerFactory } from '../infra/request-logger.js';
import type { Logger } from '../infra/logger.js';
import { frameworkErrorHandler } from '../shared/error-handler.js';
import { serializerCompiler } from '../shared/serializer.js';
import type { App } from './types.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a caller's X-Request-Id (from a proxy) when it is sane, so one id follows a request end to end. */
function requestId(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

/** The Fastify instance with the server-wide options: logging, proxies, limits and timeouts, zod. */
export function createServer(config: Config, logger: Logger): App {
  // Typed as Fastify's logger so the instance type stays the default one routes expect.
  const loggerInstance: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance,
    // Fastify's two lines per request are replaced by the one access line of the access-log hook.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    childLoggerFactory: deferredChildLoggerFactory,
    genReqId: requestId,
    // A hop count trusts that many proxies in front of us, as proxy-addr counts them.
    trustProxy: typeof config.TRUST_PROXY === 'number' ? trustHops(config.TRUST_PROXY) : config.TRUST_PROXY,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // A client that trickles its request in would hold a connection (and its memory) for ever:
    // Node answers 408 and closes it. Node checks these deadlines every connectionsCheckingInterval
    // (30 s by default), so the interval follows the shorter deadline.
    requestTimeout: config.HTTP_REQUEST_TIMEOUT,
    http: {
      requestTimeout: config.HTTP_REQUEST_TIMEOUT,
      headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT, config.HTTP_REQUEST_TIMEOUT),
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(Math.min(config.HTTP_HEADERS_TIMEOUT, config.HTTP_REQUEST_TIMEOUT) / 4))),
    },
    // Requests that arrive while closing get our own 503 (the draining hook), not Fastify's body.
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  return app;
}
