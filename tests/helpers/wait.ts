export interface UntilOptions {
  /** How long the condition may take before the test fails; 5 s unless told. */
  timeoutMs?: number;
  intervalMs?: number;
  /** What was awaited, for the failure. */
  message: string;
}

/** Polls `check` until it returns a truthy value, and returns that value; fails with `message` past `timeoutMs`. */
export async function until<T>(check: () => T | Promise<T>, { timeoutMs = 5_000, intervalMs = 20, message }: UntilOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`${message}: not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface StaysOptions {
  /** How long nothing may happen: a bounded observation window, not a wait for something. */
  forMs: number;
  intervalMs?: number;
  /** What must keep holding, for the failure. */
  message: string;
}

/**
 * Checks that `holds` stays true for `forMs`, failing with `message` the first time it does not.
 * For "nothing happens" assertions, after a barrier event that proves the input was processed.
 */
export async function stays(holds: () => boolean | Promise<boolean>, { forMs, intervalMs = 20, message }: StaysOptions): Promise<void> {
  const deadline = Date.now() + forMs;
  for (;;) {
    if (!(await holds())) throw new Error(`${message}: stopped holding within ${forMs} ms`);
    if (Date.now() >= deadline) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
