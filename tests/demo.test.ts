import { describe, expect, it } from 'vitest';
import { buildTestApp } from './helpers/app.js';

describe('the /demo page', () => {
  it('serves the page and its two assets; anything else under /demo is a 404', async () => {
    const t = await buildTestApp();
    try {
      const page = await t.app.inject({ method: 'GET', url: '/demo' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.body).toContain('/socket.io/socket.io.min.js');
      const script = await t.app.inject({ method: 'GET', url: '/demo/demo.js' });
      expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect((await t.app.inject({ method: 'GET', url: '/demo/demo.css' })).headers['content-type']).toBe('text/css; charset=utf-8');

      const slash = await t.app.inject({ method: 'GET', url: '/demo/' });
      expect(slash.statusCode).toBe(308);
      expect(slash.headers.location).toBe('/demo');
      for (const url of ['/demo/index.html', '/demo/toString', '/demo/..%2Fpackage.json']) {
        const missing = await t.app.inject({ method: 'GET', url });
        expect(missing.statusCode, url).toBe(404);
        expect(missing.json().error.code).toBe('not_found');
      }
    } finally {
      await t.close();
    }
  });

  it('is off in production unless DEMO_ENABLED turns it on', async () => {
    const production = {
      NODE_ENV: 'production',
      SESSION_SECRET: 'a production session secret of 32+ chars',
      METRICS_TOKEN: 'a production metrics token',
      OLLAMA_KEY_ENCRYPTION_KEY: '5e'.repeat(32),
    };
    const closed = await buildTestApp({ env: production });
    try {
      expect((await closed.app.inject({ method: 'GET', url: '/demo' })).statusCode).toBe(404);
      expect((await closed.app.inject({ method: 'GET', url: '/demo/demo.js' })).statusCode).toBe(404);
    } finally {
      await closed.close();
    }
    const enabled = await buildTestApp({ env: { ...production, DEMO_ENABLED: 'true' } });
    try {
      expect((await enabled.app.inject({ method: 'GET', url: '/demo' })).statusCode).toBe(200);
    } finally {
      await enabled.close();
    }
    const disabled = await buildTestApp({ env: { DEMO_ENABLED: 'false' } });
    try {
      expect((await disabled.app.inject({ method: 'GET', url: '/demo' })).statusCode).toBe(404);
    } finally {
      await disabled.close();
    }
  });
});
