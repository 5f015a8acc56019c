import { describe, expect, it } from 'vitest';
import { buildTestApp, capturingLogger } from './helpers/app.js';

describe('logging', () => {
  it('redacts passwords, tokens and keys wherever they are logged', () => {
    const { logger, lines } = capturingLogger();
    logger.info(
      {
        body: { email: 'a@b.co', password: 'hunter2', refreshToken: 'r-123' },
        apiKey: 'k-1',
        req: { headers: { authorization: 'Bearer abc', cookie: 'session_token=xyz' } },
      },
      'x',
    );
    const text = JSON.stringify(lines);
    for (const secret of ['hunter2', 'r-123', 'k-1', 'Bearer abc', 'session_token=xyz']) expect(text).not.toContain(secret);
    expect(text).toContain('a@b.co');
  });

  it('writes one access line per request carrying the request id, never the Authorization header', async () => {
    const { logger, lines } = capturingLogger();
    const t = await buildTestApp({ logger });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/openapi.json', headers: { authorization: 'Bearer secret-token-value' } });
      const access = lines.filter((line) => line.msg === 'request completed');
      expect(access).toHaveLength(1);
      expect(access[0]).toMatchObject({ requestId: res.headers['x-request-id'], method: 'GET', url: '/openapi.json', statusCode: 200 });
      expect(JSON.stringify(lines)).not.toContain('secret-token-value');
      // probes are not access-logged
      await t.app.inject({ method: 'GET', url: '/health' });
      expect(lines.filter((line) => line.msg === 'request completed')).toHaveLength(1);
    } finally {
      await t.close();
    }
  });
});
