import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { transactionWithRetry } from '../src/infra/transactions.js';
import { buildTestApp, capturingLogger, type TestApp } from './helpers/app.js';

const { logger, lines } = capturingLogger();
let t: TestApp;

beforeAll(async () => {
  t = await buildTestApp({
    logger,
    env: { RATE_LIMIT_REQUESTS: '1000', BODY_LIMIT_BYTES: '2048' },
    extend: (app) => {
      app.post(
        '/test/echo/:id',
        {
          schema: {
            params: z.object({ id: z.uuid() }),
            querystring: z.object({ verbose: z.enum(['yes', 'no']).optional() }),
            body: z.strictObject({ email: z.email(), age: z.number().int().min(13) }),
          },
        },
        async (request) => ({ id: request.params.id, email: request.body.email }),
      );
      app.get('/test/boom', async () => {
        throw new Error('database password is hunter2');
      });
      app.get('/test/deadlock', async () => {
        await t.container.db.transaction((manager) => manager.query(RAISE_DEADLOCK));
      });
      app.get('/test/limited', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => ({ ok: true }));
    },
  });
});
afterAll(() => t.close());

/** A real PostgreSQL error with the deadlock victim's SQLSTATE. */
const RAISE_DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$";

const id = '8f0e3c1e-8a65-4f5e-9d7a-2f6c0d1b9a10';

describe('one error shape for every failure', () => {
  it('answers invalid fields with 400 validation_failed listing each field', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/test/echo/${id}`, payload: { email: 'not-an-email', age: 3 } });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details.fields.map((field: { path: string }) => field.path).sort()).toEqual(['age', 'email']);
    expect(body.error.details.fields[0].in).toBe('body');
  });

  it('rejects unknown body fields', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/test/echo/${id}`, payload: { email: 'a@b.co', age: 20, role: 'admin' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });

  it('names the params and querystring when they are wrong', async () => {
    const params = await t.app.inject({ method: 'POST', url: '/test/echo/not-a-uuid', payload: { email: 'a@b.co', age: 20 } });
    expect(params.json().error.details.fields[0]).toMatchObject({ in: 'params', path: 'id' });
    const query = await t.app.inject({ method: 'POST', url: `/test/echo/${id}?verbose=maybe`, payload: { email: 'a@b.co', age: 20 } });
    expect(query.json().error.details.fields[0]).toMatchObject({ in: 'querystring', path: 'verbose' });
  });

  it('passes valid input to the handler', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/test/echo/${id}`, payload: { email: 'a@b.co', age: 20 } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id, email: 'a@b.co' });
  });

  it('answers malformed JSON with 400 invalid_json', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/test/echo/${id}`, headers: { 'content-type': 'application/json' }, payload: '{"email": ' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_json');
  });

  it('answers an unsupported content type with 415', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/test/echo/${id}`, headers: { 'content-type': 'application/xml' }, payload: '<a/>' });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('unsupported_media_type');
  });

  it('answers an unknown route with 404 route_not_found', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/no/such/route?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'route_not_found', message: 'Route GET /no/such/route not found' } });
  });

  it('answers a body over the limit with 413 payload_too_large', async () => {
    const res = await t.app.inject({ method: 'POST', url: `/test/echo/${id}`, payload: { email: `${'a'.repeat(4000)}@b.co`, age: 20 } });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
  });

  it('answers the request over the limit with 429 and Retry-After', async () => {
    const responses = [];
    for (let i = 0; i < 3; i += 1) responses.push(await t.app.inject({ method: 'GET', url: '/test/limited', remoteAddress: '203.0.113.9' }));
    expect(responses.map((res) => res.statusCode)).toEqual([200, 200, 429]);
    const limited = responses[2]!;
    expect(limited.json().error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // another client is not affected
    const other = await t.app.inject({ method: 'GET', url: '/test/limited', remoteAddress: '203.0.113.10' });
    expect(other.statusCode).toBe(200);
  });

  it('hides an unexpected error behind 500 internal_error and logs its stack', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'internal_error', message: 'Internal server error' } });
    expect(res.body).not.toContain('hunter2');
    expect(res.body).not.toContain('at ');
    const logged = lines.find((line) => line.msg === 'unexpected error');
    expect(logged).toBeDefined();
    expect(String((logged!.err as { stack: string }).stack)).toContain('http-errors.test.ts');
    expect(logged!.requestId).toBe(res.headers['x-request-id']);
  });

  it('returns a request id on every response and keeps a sane one the caller sent', async () => {
    const mine = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'edge-abc.123' } });
    expect(mine.headers['x-request-id']).toBe('edge-abc.123');
    const hostile = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'a b\u0007<script>' } });
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a deadlock or serialization failure that outlived its retries with 503, not 500', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/deadlock' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('dependency_unavailable');
    expect(res.headers['retry-after']).toBe('1');
  });
});

describe('transactionWithRetry', () => {
  it('runs the transaction again after a deadlock or a serialization failure', async () => {
    const codes = ['40P01', '40001'];
    let attempts = 0;
    const result = await transactionWithRetry(t.container.db, async (manager) => {
      attempts += 1;
      const code = codes[attempts - 1];
      if (code) await manager.query(`DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '${code}'; END $$`);
      return 'done';
    });
    expect(result).toBe('done');
    expect(attempts).toBe(3);
  });

  it('gives up after its attempts, and never retries other errors', async () => {
    let attempts = 0;
    await expect(
      transactionWithRetry(t.container.db, async (manager) => {
        attempts += 1;
        await manager.query(RAISE_DEADLOCK);
      }),
    ).rejects.toThrow('deadlock detected');
    expect(attempts).toBe(4);
    attempts = 0;
    await expect(
      transactionWithRetry(t.container.db, async (manager) => {
        attempts += 1;
        await manager.query('SELECT 1/0');
      }),
    ).rejects.toThrow('division by zero');
    expect(attempts).toBe(1);
  });
});
