import { ConfigError } from './config/load.js';
import { EmbeddedPostgresUnusableError } from './infra/embedded-postgres.js';
import { MissingKeysError } from './infra/keys.js';
import type { Logger } from './infra/logger.js';

// SIGHUP too: a closed terminal stops the process cleanly (and the embedded PostgreSQL with it).
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** A process an entry point has built: it can start serving, drain, or (if it never started) close. */
export interface BuiltProcess {
  logger: Logger;
  /** Starts taking work (listening); logs that it is ready. */
  start(): Promise<void>;
  /** Drains within the shutdown deadline and closes everything; true when nothing was cut short. */
  drain(): Promise<boolean>;
  /** Releases what was built when start() failed. */
  close(): Promise<void>;
}

/**
 * Runs an entry point (the API server, a worker) and owns the process's signals and exit.
 * The signals are handled from the first moment: one during start-up stops the process as
 * soon as it is built, one while running drains it. Repeated signals (npm forwards the
 * terminal's SIGINT that the process already got) do not cut the drain short; it is bounded
 * by SHUTDOWN_TIMEOUT. The process exits 0 after a clean drain, 1 otherwise.
 */
export function runEntryPoint(name: string, build: () => Promise<BuiltProcess>): void {
  let built: BuiltProcess | undefined;
  let stopRequested: NodeJS.Signals | undefined;
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping || !built) return;
    stopping = true;
    built.logger.info({ signal }, 'shutting down');
    const clean = await built.drain();
    built.logger.info({ clean }, 'stopped');
    built.logger.flush();
    process.exit(clean ? 0 : 1);
  };
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      stopRequested ??= signal;
      void stop(signal);
    });
  }

  const main = async () => {
    built = await build();
    if (stopRequested) return stop(stopRequested);
    try {
      await built.start();
    } catch (error) {
      await built.close();
      throw error;
    }
  };
  main().catch((error: unknown) => {
    // Configuration, key and embedded-database problems are the operator's to fix: one clear line, no stack.
    if (error instanceof ConfigError || error instanceof MissingKeysError || error instanceof EmbeddedPostgresUnusableError) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else {
      process.stderr.write(`${name}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  });
}
