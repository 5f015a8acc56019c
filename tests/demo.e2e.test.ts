import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { uniqueEmail } from './helpers/auth.js';
import { listen } from './helpers/realtime.js';

describe.runIf(hasChromium)('the /demo page in a real browser', () => {
  let t: TestApp;
  let url: string;
  let browser: Browser;
  beforeAll(async () => {
    t = await buildTestApp();
    url = await listen(t.app);
    browser = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  async function student(name: string): Promise<Page> {
    const context = await browser.newContext({ permissions: ['microphone'] });
    const page = await context.newPage();
    await page.goto(`${url}/demo`);
    await page.fill('#email', uniqueEmail(name));
    await page.fill('#password', 'demo passphrase 1');
    await page.click('#register');
    await page.waitForSelector('body[data-state="signed-in"]');
    await page.fill('#username', `${name}_${Date.now() % 100_000}`);
    await page.selectOption('#level', 'intermediate');
    await page.click('#save-level');
    await page.waitForSelector('body[data-state="ready"]');
    return page;
  }

  const inboundAudioBytes = (page: Page) =>
    page.evaluate(async () => {
      // runs in the page
      const pc = (globalThis as unknown as { parley: { pc: { getStats(): Promise<Map<string, unknown>> } | null } }).parley.pc;
      if (!pc) return 0;
      let bytes = 0;
      (await pc.getStats()).forEach((value) => {
        const report = value as { type: string; kind?: string; bytesReceived?: number };
        if (report.type === 'inbound-rtp' && report.kind === 'audio') bytes += report.bytesReceived ?? 0;
      });
      return bytes;
    });

  it('matches two students who then hear each other over WebRTC, and records the call', async () => {
    const ana = await student('ana');
    const ben = await student('ben');
    await ana.click('#find');
    await ana.waitForSelector('body[data-state="searching"]');
    await ben.click('#find');
    await Promise.all([
      ana.waitForSelector('body[data-state="in-call"]', { timeout: 20_000 }),
      ben.waitForSelector('body[data-state="in-call"]', { timeout: 20_000 }),
    ]);

    // audio flows both ways, peer to peer
    await expect.poll(() => inboundAudioBytes(ana), { timeout: 15_000 }).toBeGreaterThan(2_000);
    await expect.poll(() => inboundAudioBytes(ben), { timeout: 15_000 }).toBeGreaterThan(2_000);

    const roomId = await ana.evaluate(() => (globalThis as unknown as { parley: { roomId: string } }).parley.roomId);
    await ana.click('#end');
    await ben.waitForSelector('body[data-state="ended"]');
    await expect
      .poll(async () => (await t.container.db.query('SELECT ended_by FROM call_sessions WHERE room_id = $1', [roomId]))[0]?.ended_by)
      .toMatch(/^user_[ab]$/);
    const [call] = await t.container.db.query('SELECT duration_seconds FROM call_sessions WHERE room_id = $1', [roomId]);
    expect(call.duration_seconds).toBeGreaterThanOrEqual(0);
  }, 90_000);
});
