import { ConfigError, loadConfig, type Config } from '../src/config/load.js';

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
