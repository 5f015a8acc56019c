import { type Browser } from 'playwright-core';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from './helpers/browser.js';
import { buildTestApp, type TestApp } from './helpers/app.js';
import { githubUser, startFakeGitHub, type FakeGitHub } from './helpers/fake-github.js';

describe.runIf(hasChromium)('signing in with GitHub from /demo in a real browser', () => {
  let github: FakeGitHub;
  let t: TestApp;
  let url: string;
  let browser: Browser;
  beforeAll(async () => {
    github = await startFakeGitHub();
    const port = await findFreePort();
    url = `http://127.0.0.1:${port}`;
    t = await buildTestApp({
      env: {
        WORKERS: 'off',
        DATABASE_POOL_SIZE: '4',
        APP_URL: url,
        GITHUB_CLIENT_ID: github.clientId,
        GITHUB_CLIENT_SECRET: github.clientSecret,
        GITHUB_OAUTH_URL: github.origin,
        GITHUB_API_URL: github.origin,
      },
    });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await github?.close();
  });

  it('goes to GitHub and back, ends signed in by the session cookie, shows the user and saves the profile with the CSRF token', async () => {
    const user = githubUser('chromium', [{ email: 'chromium-user@users.parley.test', primary: true, verified: true }]);
    github.signInAs = user;
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}/demo`);
    await page.click('#github');
    await page.waitForSelector('body[data-state="signed-in"]');
    expect(new URL(page.url()).pathname).toBe('/demo');
    expect(await page.textContent('#signed-in-as')).toBe('chromium-user@users.parley.test');
    expect(github.requests).toEqual(['GET /login/oauth/authorize', 'POST /login/oauth/access_token', 'GET /user', 'GET /user/emails']);

    const cookies = await context.cookies(url);
    const session = cookies.find((cookie) => cookie.name === 'session_token');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    // the state cookie was spent by the callback
    expect(cookies.find((cookie) => cookie.name === 'oauth_state')).toBeUndefined();
    // HttpOnly: the page's script cannot read it
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).not.toContain('session_token');

    // a cookie-authenticated write from the page: the CSRF token and the page's Origin go with it
    await page.fill('#username', 'chromium_user');
    await page.selectOption('#level', 'advanced');
    await page.click('#save-level');
    await page.waitForSelector('body[data-state="ready"]');
    const [profile] = await t.container.db.query(
      "SELECT p.english_level FROM profiles p JOIN users u ON u.id = p.user_id WHERE u.email = 'chromium-user@users.parley.test'",
    );
    expect(profile.english_level).toBe('advanced');
    await context.close();
  }, 60_000);

  it('lands back on /demo with the error when GitHub refuses the sign-in', async () => {
    github.signInAs = githubUser('unverified-chromium', [{ email: 'unverified-chromium@users.parley.test', primary: true, verified: false }]);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}/demo`);
    await page.click('#github');
    await page.waitForURL(/\/demo\?error=email_not_verified$/);
    await expect.poll(() => page.textContent('#log')).toContain('GitHub sign-in failed: email_not_verified');
    expect(await page.getAttribute('body', 'data-state')).toBe('signed-out');
    await context.close();
  }, 60_000);
});
