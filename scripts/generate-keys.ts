import { existsSync } from 'node:fs';
import path from 'node:path';
import { generateKeyFiles, retireKey, rotateKeyFiles } from '../src/infra/keys.js';
import { cliConfig } from './cli-config.js';

/**
 * npm run keys:generate                 a first RSA 2048 pair and key id in JWT_KEYS_DIR (default keys/)
 * npm run keys:generate -- --rotate     a new signing pair; the old public key keeps verifying (restart to apply)
 * npm run keys:generate -- --retire KID tokens signed by KID stop verifying (after they have expired)
 * npm run keys:generate -- --force      replace the pair outright (every issued token stops verifying)
 * Run it on the production server itself; never copy keys from a development machine.
 */
const config = cliConfig();
const dir = path.resolve(config.JWT_KEYS_DIR);
const args = process.argv.slice(2);
const exists = existsSync(path.join(dir, 'private.pem'));

if (args.includes('--rotate')) {
  if (!exists) {
    console.error(`parley: no key in ${dir} to rotate; run npm run keys:generate first`);
    process.exit(1);
  }
  const { retiring, kid } = await rotateKeyFiles(dir);
  console.log(`signing with ${kid} after a restart; ${retiring} keeps verifying until: npm run keys:generate -- --retire ${retiring}`);
} else if (args.includes('--retire')) {
  const kid = args[args.indexOf('--retire') + 1];
  if (!kid || !(await retireKey(dir, kid))) {
    console.error(`parley: no rotated-out key "${kid ?? ''}" in ${dir}/previous`);
    process.exit(1);
  }
  console.log(`retired ${kid}`);
} else {
  if (exists && !args.includes('--force')) {
    console.error(`parley: ${dir}/private.pem exists; use --rotate to add a new key, or --force to replace it (every issued access token stops verifying)`);
    process.exit(1);
  }
  const { kid } = await generateKeyFiles(dir, { markAsDevelopment: false });
  console.log(`wrote ${dir}/private.pem, public.pem and kid (${kid})`);
}
