import { existsSync } from 'node:fs';
import path from 'node:path';
import { generateKeyFiles } from '../src/infra/keys.js';
import { cliConfig } from './cli-config.js';

/**
 * npm run keys:generate [-- --force]
 * Writes an RSA 2048 pair and a key id into JWT_KEYS_DIR (default keys/). Run it on the
 * production server itself; never copy keys from a development machine.
 */
const config = cliConfig();
const dir = path.resolve(config.JWT_KEYS_DIR);
const force = process.argv.includes('--force');
if (existsSync(path.join(dir, 'private.pem')) && !force) {
  console.error(`parley: ${dir}/private.pem exists; pass --force to replace it (every issued access token stops verifying)`);
  process.exit(1);
}
const { kid } = await generateKeyFiles(dir, { markAsDevelopment: false });
console.log(`wrote ${dir}/private.pem, public.pem and kid (${kid})`);
