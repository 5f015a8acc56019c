import { type Browser, type Page } from 'playwright-core';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { PASSWORD, register } from './helpers/auth.js';
import { linkFrom, startSmtpCapture } from './helpers/smtp.js';

const login = (t: TestApp, email: string, password: string) =>
  t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password, deviceId: 'laptop-1', platform: 'web' } });

describe('e-mail links without a front end of your own', () => {
  let smtp: Awaited<ReturnType<typeof startSmtpCapture>>;
  let t: TestApp;
  beforeAll(async () => {
    smtp = await startSmtpCapture();
    t = await buildTestApp({ env: { SMTP_URL: smtp.url, APP_URL: 'https://api.parley.test' } });
  });
  afterAll(async () => {
    await t.close();
    await smtp.close();
  });

  it('point at pages this server serves, which answer 200 and leave the token unused', async () => {
    const account = await register(t.app);
    const verify = linkFrom(await smtp.nextMail(account.email));
    expect(verify.origin + verify.pathname).toBe('https://api.parley.test/verify-email');
    const page = await t.app.inject({ method: 'GET', url: verify.pathname + verify.search });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain('<script src="/pages/account.js"');
    // opening the link (as a mail scanner would) did not verify anything; the POST still can
    const [before] = await t.container.db.query('SELECT is_verified FROM users WHERE id = $1', [account.user.id]);
    expect(before.is_verified).toBe(false);
    const token = verify.searchParams.get('token');
    expect((await t.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } })).statusCode).toBe(204);

    await t.app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: account.email } });
    const reset = linkFrom(await smtp.nextMail(account.email));
    expect(reset.origin + reset.pathname).toBe('https://api.parley.test/reset-password');
    expect((await t.app.inject({ method: 'GET', url: reset.pathname + reset.search })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/pages/account.js' })).headers['content-type']).toContain('text/javascript');
    expect((await t.app.inject({ method: 'GET', url: '/pages/nope.js' })).statusCode).toBe(404);
  });
});

describe('e-mail links with a front end configured', () => {
  it('point at FRONTEND_RESET_PASSWORD_URL and FRONTEND_VERIFY_EMAIL_URL', async () => {
    const smtp = await startSmtpCapture();
    const t = await buildTestApp({
      env: {
        SMTP_URL: smtp.url,
        FRONTEND_RESET_PASSWORD_URL: 'https://app.parley.test/account/reset?lang=en',
        FRONTEND_VERIFY_EMAIL_URL: 'https://app.parley.test/account/verify',
      },
    });
    try {
      const account = await register(t.app);
      const verify = linkFrom(await smtp.nextMail(account.email));
      expect(verify.origin + verify.pathname).toBe('https://app.parley.test/account/verify');
      await t.app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: account.email } });
      const reset = linkFrom(await smtp.nextMail(account.email));
      expect(reset.origin + reset.pathname).toBe('https://app.parley.test/account/reset');
      expect(reset.searchParams.get('lang')).toBe('en');
      expect(reset.searchParams.get('token')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    } finally {
      await t.close();
      await smtp.close();
    }
  });
});

describe.runIf(hasChromium)('the reset and confirmation pages in a real browser', () => {
  let smtp: Awaited<ReturnType<typeof startSmtpCapture>>;
  let t: TestApp;
  let browser: Browser;
  beforeAll(async () => {
    smtp = await startSmtpCapture();
    const port = await findFreePort();
    t = await buildTestApp({ env: { SMTP_URL: smtp.url, APP_URL: `http://127.0.0.1:${port}` } });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await smtp?.close();
  });

  /** A page that records what the CSP blocked and any script error. */
  async function open(url: URL): Promise<{ page: Page; problems: string[] }> {
    const page = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    // a CSP refusal or a script error shows as a console error; failed loads are judged by their response
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
    });
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) problems.push(`${response.status()} ${response.url()}`);
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(url.toString());
    return { page, problems };
  }

  it('confirms an e-mail address from the link, only when the user clicks', async () => {
    const account = await register(t.app);
    const { page, problems } = await open(linkFrom(await smtp.nextMail(account.email)));
    await page.waitForSelector('body[data-state="ready"]');
    const verified = async () => (await t.container.db.query('SELECT is_verified FROM users WHERE id = $1', [account.user.id]))[0].is_verified;
    expect(await verified()).toBe(false);
    await page.click('#submit');
    await page.waitForSelector('body[data-state="done"]');
    expect(await page.textContent('#outcome')).toContain('confirmed');
    expect(await verified()).toBe(true);
    expect(new URL(page.url()).search).toBe('');
    expect(problems).toEqual([]);
  });

  it('resets a password from the link in the e-mail, and the new one signs in', async () => {
    const account = await register(t.app);
    await smtp.nextMail(account.email); // the welcome mail
    expect((await t.app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: account.email } })).statusCode).toBe(202);
    const { page, problems } = await open(linkFrom(await smtp.nextMail(account.email)));
    await page.fill('#new-password', 'a fresh browser passphrase');
    await page.fill('#repeat-password', 'a fresh browser passphrase');
    await page.click('#submit');
    await page.waitForSelector('body[data-state="done"]');
    expect(await page.textContent('#outcome')).toContain('password has been changed');
    expect(problems).toEqual([]);

    expect((await login(t, account.email, 'a fresh browser passphrase')).statusCode).toBe(200);
    expect((await login(t, account.email, PASSWORD)).statusCode).toBe(401);

    expect(new URL(page.url()).search).toBe('');
  }, 60_000);

  it('shows the server refusal for a used or forged link', async () => {
    const { page } = await open(new URL(`/reset-password?token=${'x'.repeat(43)}`, t.app.listeningOrigin));
    await page.fill('#new-password', 'another passphrase!');
    await page.fill('#repeat-password', 'another passphrase!');
    await page.click('#submit');
    await page.waitForSelector('body[data-state="failed"]');
    expect(await page.textContent('#outcome')).toContain('invalid');
  });
});
