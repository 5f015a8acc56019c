import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import bcrypt from 'bcrypt';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Compares against `hash`, or against a dummy hash when there is none, so both take the same time. */
  verify(password: string, hash: string | null): Promise<boolean>;
  /** True for a hash of an older format, which the caller replaces after a successful verify. */
  needsRehash(hash: string): boolean;
  close(): Promise<void>;
}

/**
 * Marks hashes of the pre-hashed password. bcrypt reads only 72 bytes (and stops at a NUL),
 * so the whole password is first reduced to 44 base64 characters by HMAC-SHA-256; hashes
 * without the marker are plain bcrypt of the password and keep verifying.
 */
const PREHASHED = '$sha256-bcrypt$';
// A fixed, public key: the HMAC only makes these digests differ from plain SHA-256 ones.
const PREHASH_KEY = 'parley-password-prehash-v1';

function prehash(password: string): string {
  return createHmac('sha256', PREHASH_KEY).update(password, 'utf8').digest('base64');
}

// Runs in each worker thread. Linux keeps nice values per thread, so setPriority(19) here
// lowers this thread only: hashing then yields the CPU to the event loop, the database and
// everything else, and a login burst no longer stretches other requests' latency.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const os = require('node:os');
const bcrypt = require(workerData.bcryptPath);
try { os.setPriority(19); } catch {}
parentPort.on('message', ({ id, op, password, hash, cost }) => {
  try {
    const result = op === 'hash' ? bcrypt.hashSync(password, cost) : bcrypt.compareSync(password, hash);
    parentPort.postMessage({ id, result });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;

interface Task {
  id: number;
  message: { op: 'hash' | 'compare'; password: string; hash?: string; cost?: number };
  resolve: (value: string | boolean) => void;
  reject: (error: Error) => void;
}

/**
 * bcrypt in `concurrency` low-priority worker threads; further requests queue. Neither the
 * event loop nor libuv's thread pool (which token checks use) ever waits on a hash.
 */
export async function createBcryptHasher(cost: number, concurrency: number): Promise<PasswordHasher> {
  const bcryptPath = createRequire(import.meta.url).resolve('bcrypt');
  const idle: Worker[] = [];
  const busy = new Map<Worker, Task>();
  const queue: Task[] = [];
  let nextId = 0;

  const dispatch = () => {
    while (idle.length && queue.length) {
      const worker = idle.pop()!;
      const task = queue.shift()!;
      busy.set(worker, task);
      worker.postMessage({ id: task.id, ...task.message });
    }
  };

  for (let i = 0; i < concurrency; i += 1) {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
    worker.unref();
    worker.on('message', (reply: { id: number; result?: string | boolean; error?: string }) => {
      const task = busy.get(worker);
      busy.delete(worker);
      idle.push(worker);
      if (task) {
        if (reply.error !== undefined) task.reject(new Error(reply.error));
        else task.resolve(reply.result!);
      }
      dispatch();
    });
    idle.push(worker);
  }

  const run = (message: Task['message']) =>
    new Promise<string | boolean>((resolve, reject) => {
      queue.push({ id: (nextId += 1), message, resolve, reject });
      dispatch();
    });

  const dummyHash = PREHASHED + (await bcrypt.hash(prehash('parley-dummy-password-for-equal-timing'), cost));
  return {
    hash: async (password) => PREHASHED + ((await run({ op: 'hash', password: prehash(password), cost })) as string),
    verify: async (password, hash) => {
      const stored = hash ?? dummyHash;
      const matches = stored.startsWith(PREHASHED)
        ? await run({ op: 'compare', password: prehash(password), hash: stored.slice(PREHASHED.length) })
        : await run({ op: 'compare', password, hash: stored });
      return hash !== null && matches === true;
    },
    needsRehash: (hash) => !hash.startsWith(PREHASHED),
    close: async () => {
      await Promise.all([...idle, ...busy.keys()].map((worker) => worker.terminate()));
    },
  };
}
