import { ENV_ALIASES, ENV_GROUPS, PLANNED_ENV, envSchema } from './env.js';

interface FieldDef {
  type: string;
  defaultValue?: unknown;
}

function defaultOf(key: keyof typeof envSchema.shape): string | undefined {
  const def = (envSchema.shape[key] as unknown as { _zod: { def: FieldDef } })._zod.def;
  if (def.type !== 'default' && def.type !== 'prefault') return undefined;
  return String(def.defaultValue);
}

/** Renders `.env.example` from the schema, so the example can never drift from what is read. */
export function renderEnvExample(): string {
  const out: string[] = [
    '# Parley configuration. Copy to .env (or point ENV_FILE at a file) and change what you need.',
    '# Every line is optional in development: with nothing set Parley runs on embedded defaults.',
    '# Generated from src/config/env.ts by `npm run env:example`; do not edit by hand.',
    '',
    '# A further file of settings, read after .env (process environment still wins), e.g. a secrets folder:',
    '# ENV_FILE=../JayaAppSecrets/environment.env',
    '',
  ];
  for (const group of ENV_GROUPS) {
    out.push(`# --- ${group.title} ---`);
    for (const key of group.keys) {
      out.push(`# ${envSchema.shape[key].description ?? ''}`);
      const fallback = defaultOf(key);
      out.push(fallback === undefined ? `# ${key}=` : `${key}=${fallback}`);
    }
    out.push('');
  }
  out.push("# --- Also read under the source documents' names (an alias and its setting set differently in one file stop start-up) ---");
  for (const { alias, setting, source } of ENV_ALIASES) out.push(`# ${alias} (${source}) = ${setting}`);
  out.push('# Any other name in .env or ENV_FILE is reported at start (with the nearest known name) and ignored.');
  out.push('');
  if (PLANNED_ENV.length) {
    out.push('# --- Not read yet: settings of modules that have not landed (see SPEC.md) ---');
    for (const planned of PLANNED_ENV) out.push(`# ${planned.module}: ${planned.keys.join(', ')}`);
    out.push('');
  }
  return out.join('\n');
}
