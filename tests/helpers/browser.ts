import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (apt-get install chromium), which playwright-core drives. */
const CHROMIUM = '/usr/bin/chromium';

/** Whether the browser tests can run here; they are skipped, with a warning, where it is missing. */
export const hasChromium = existsSync(CHROMIUM);
// CI installs it and sets REQUIRE_TEST_TOOLS, so there a missing browser fails instead of hiding the tests.
if (!hasChromium && process.env.REQUIRE_TEST_TOOLS === '1') throw new Error(`REQUIRE_TEST_TOOLS=1 but ${CHROMIUM} is not installed (apt-get install chromium)`);
if (!hasChromium) console.warn(`skipping the browser tests: ${CHROMIUM} is not installed (apt-get install chromium)`);

/**
 * Headless chromium that opens no connection of its own: this machine's closed network refuses
 * them (many at a time without the background-networking flags). `extraArgs` add to the flags.
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}
