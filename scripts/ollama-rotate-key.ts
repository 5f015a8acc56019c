import { runWithContainer } from './cli-config.js';

/**
 * npm run ollama:rotate-key
 * Re-seals every stored Ollama key under OLLAMA_KEY_ENCRYPTION_KEY. First give every server the
 * new key as OLLAMA_KEY_ENCRYPTION_KEY and the old one in OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS
 * (a rolling restart: both open, new writes use the new key), then run this with the same
 * settings, then drop the old key from OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS. Safe to run again.
 * Two rotations never run at once: the second waits for the first, then fails with lock_unavailable.
 */
const BATCH = 200;
/** How long a second rotation waits for a running one (which then leaves it nothing to do). */
const WAIT_FOR_RUNNING_MS = 30_000;

await runWithContainer(async (container) => {
  const { keys } = container.services.ollama;
  const before = await keys.versions();
  const waiting = before.versions.filter((entry) => entry.version !== before.current).reduce((sum, entry) => sum + entry.rows, 0);
  console.log(`current key ${before.current}: ${waiting} stored keys to re-seal`);
  const totals = await keys.rotate(BATCH, {
    waitMs: WAIT_FOR_RUNNING_MS,
    onBatch: (done) => {
      if (process.stdout.isTTY) process.stdout.write(`\r${done.resealed + done.unreadable}/${waiting}`);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`re-sealed ${totals.resealed}, unreadable ${totals.unreadable}`);
  if (totals.unreadable === 0) return 0;
  console.error('parley: some keys open with no known key: add the key that sealed them to OLLAMA_KEY_ENCRYPTION_KEY_PREVIOUS and run again');
  return 2;
});
