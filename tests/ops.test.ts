import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { buildTestApp, type TestApp } from './helpers/app.js';

describe('GET /health', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ clock: { now: () => new Date('2026-01-02T03:04:05.000Z') } });
  });
  afterAll(() => t.close());

  it('answers ok with the clock time', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', timestamp: '2026-01-02T03:04:05.000Z' });
  });

  it('is never rate-limited (load balancers poll it)', async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 20; i += 1) statuses.add((await t.app.inject({ method: 'GET', url: '/health' })).statusCode);
    expect([...statuses]).toEqual([200]);
  });
});

describe('GET /ready', () => {
  it('answers ready when PostgreSQL and Redis answer', async () => {
    const t = await buildTestApp();
    try {
      const res = await t.app.inject({ method: 'GET', url: '/ready' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
    } finally {
      await t.close();
    }
  });

  it('answers 503 naming Redis when Redis is unreachable', async () => {
    const deadPort = await findFreePort();
    const t = await buildTestApp({ env: { REDIS_URL: `redis://127.0.0.1:${deadPort}` } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/ready' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({
        code: 'dependency_unavailable',
        message: 'Not ready: redis unavailable',
        details: { checks: { database: 'ok', redis: 'unavailable' } },
      });
      // the rest of the API keeps answering: rate limits fail open while Redis is down
      expect((await t.app.inject({ method: 'GET', url: '/openapi.json' })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('answers 503 naming the database when PostgreSQL stops answering', async () => {
    const t = await buildTestApp();
    try {
      await t.container.db.destroy();
      const res = await t.app.inject({ method: 'GET', url: '/ready' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.details.checks).toEqual({ database: 'unavailable', redis: 'ok' });
    } finally {
      await t.app.close();
      await t.container.redis.close();
    }
  });
});

describe('GET /metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it('exposes process metrics and request durations labelled by route pattern', async () => {
    await t.app.inject({ method: 'GET', url: '/health' });
    await t.app.inject({ method: 'GET', url: '/no-such-page-123' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('process_cpu_user_seconds_total');
    expect(res.body).toMatch(/http_request_duration_seconds_count\{route="\/health",method="GET",status_code="200"\} 1/);
    // unknown URLs share one label, so a scanner cannot blow up the series count
    expect(res.body).toContain('route="unmatched",method="GET",status_code="404"');
    expect(res.body).not.toContain('no-such-page-123');
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  it('requires the bearer token', async () => {
    const t = await buildTestApp({ env: { METRICS_TOKEN: 'metrics-token-0123456789' } });
    try {
      const anonymous = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().error.code).toBe('unauthorized');
      const wrong = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer metrics-token-0123456780' } });
      expect(wrong.statusCode).toBe(401);
      const right = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer metrics-token-0123456789' } });
      expect(right.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
