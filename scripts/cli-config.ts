import { ConfigError, loadConfig, type Config } from '../src/config/load.js';
import { createContainer, type Container } from '../src/container.js';
import { createLogger } from '../src/infra/logger.js';

/** Configuration for command-line scripts, read like the server reads it; bad settings exit 1 with one line. */
export function cliConfig(): Config {
  try {
    return loadConfig({ env: process.env, cwd: process.cwd() });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`parley: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

/**
 * Builds the container as the server would, runs `work` (which answers the exit code), closes
 * the container and exits. A failure is one line on stderr and exit 1.
 */
export async function runWithContainer(work: (container: Container) => Promise<number>): Promise<never> {
  const container = await createContainer(cliConfig(), { cwd: process.cwd(), logger: createLogger({ level: 'warn' }) });
  let exitCode: number;
  try {
    exitCode = await work(container);
  } catch (error) {
    console.error(`parley: ${error instanceof Error ? error.message : String(error)}`);
    exitCode = 1;
  } finally {
    await container.close();
  }
  process.exit(exitCode);
}
