import { type Browser, type Page } from 'playwright-core';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { buildTestApp, truncateAll, type TestApp } from './helpers/app.js';
import { injectAs, register, type Pair } from './helpers/auth.js';
import { eventually } from './helpers/jobs.js';
import { checkout, createCourse, order, registerAdmin } from './helpers/payments.js';

describe.runIf(hasChromium)('the local provider’s checkout page in a real browser', () => {
  let t: TestApp;
  let browser: Browser;
  let admin: Pair;
  beforeAll(async () => {
    const port = await findFreePort();
    t = await buildTestApp({ env: { APP_URL: `http://127.0.0.1:${port}` } });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });
  beforeEach(async () => {
    await truncateAll(t);
    admin = await registerAdmin(t);
  });

  /** A page that records what the CSP blocked and any script error. */
  async function open(url: string): Promise<{ page: Page; problems: string[] }> {
    const page = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    return { page, problems };
  }

  it('pays a course: the buyer clicks Pay, lands on the success page, and the order turns paid by the webhook', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin, { title: 'Pronunciation drills', price: { amount: 1250, currency: 'usd' } });
    const { orderId, url } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();

    const { page, problems } = await open(url);
    expect(await page.locator('h1').textContent()).toBe('Pronunciation drills');
    expect(await page.locator('#pay').textContent()).toBe('Pay $12.50');
    await page.click('#pay');
    await page.waitForSelector('#status[data-status="completed"]');
    // the page sends the buyer on to the success URL, which shows the thank-you page (and changes nothing itself)
    await page.waitForURL(/\/pay\/result\?status=success&session_id=lcs_/);
    expect(await page.locator('h1').textContent()).toBe('Thank you!');
    expect(problems).toEqual([]);

    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'paid',
    );
    expect((await injectAs(t.app, buyer, { method: 'POST', url: `/courses/${course.id}/enroll` })).statusCode).toBe(200);

    // back to the checkout page: it says it is paid and offers nothing to click
    await page.goto(url);
    expect(await page.locator('#status').getAttribute('data-status')).toBe('completed');
    expect(await page.locator('#pay').count()).toBe(0);
  });

  it('cancels: the order expires and nothing is charged', async () => {
    const buyer = await register(t.app);
    const course = await createCourse(t.app, admin);
    const { orderId, url } = (await checkout(t.app, buyer, course.id)).json<{ orderId: string; url: string }>();
    const { page, problems } = await open(url);
    await page.click('#cancel');
    await page.waitForURL(/\/pay\/result\?status=cancelled/);
    expect(await page.locator('h1').textContent()).toBe('Payment cancelled');
    expect(problems).toEqual([]);
    await eventually(
      () => order(t.app, buyer, orderId),
      (o) => o.status === 'expired',
    );
  });
});
