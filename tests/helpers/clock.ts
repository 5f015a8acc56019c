import type { Clock } from '../../src/infra/clock.js';

/** A clock the test moves by hand; starts at the real time so partitions and tokens line up. */
export function manualClock(start = new Date()): Clock & { advance(ms: number): void; set(date: Date): void } {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance: (ms) => void (now += ms),
    set: (date) => void (now = date.getTime()),
  };
}
