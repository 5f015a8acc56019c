import bcrypt from 'bcrypt';

/** Runs at most `limit` tasks at once; the rest wait in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Compares against `hash`, or against a dummy hash when there is none, so both take the same time. */
  verify(password: string, hash: string | null): Promise<boolean>;
}

/**
 * bcrypt on libuv's thread pool, at most `concurrency` hashes at a time: a login burst then
 * queues here instead of occupying every pool thread that token verification also needs.
 */
export async function createBcryptHasher(cost: number, concurrency: number): Promise<PasswordHasher> {
  const gate = new Semaphore(concurrency);
  const dummyHash = await bcrypt.hash('parley-dummy-password-for-equal-timing', cost);
  return {
    hash: (password) => gate.run(() => bcrypt.hash(password, cost)),
    verify: async (password, hash) => {
      const matches = await gate.run(() => bcrypt.compare(password, hash ?? dummyHash));
      return hash !== null && matches;
    },
  };
}
