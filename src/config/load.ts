import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { closestName } from './closest-name.js';
import { ENV_ALIASES, envSchema, type Env } from './env.js';

/** What start-up should tell the operator about where the settings came from. */
export interface ConfigNotices {
  /** Settings read under a source document's name (RATE_LIMIT_WINDOW_MS for RATE_LIMIT_WINDOW). */
  aliases: ReadonlyArray<{ alias: string; setting: string }>;
  /** Names in `.env` or ENV_FILE that Parley does not read, with the nearest name it does. */
  unknown: ReadonlyArray<{ name: string; file: string; closest: string | undefined }>;
  /** Settings that do less than the operator may expect. */
  warnings: readonly string[];
}

export type Config = Readonly<
  Omit<Env, 'FORCE_HTTPS'> & {
    SESSION_SECRET: string;
    APP_URL: string;
    /** FORCE_HTTPS as it applies: unset means on in production behind TRUST_PROXY. */
    FORCE_HTTPS: boolean;
    notices: ConfigNotices;
  }
>;

/** A configuration problem; its message is one line naming each bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadConfigOptions {
  /** The process environment (wins over files). */
  env: Record<string, string | undefined>;
  /** Folder that holds `.env`; ENV_FILE is resolved against it too. */
  cwd: string;
}

function readEnvFile(file: string): Record<string, string> {
  try {
    return parseDotenv(readFileSync(file));
  } catch (error) {
    throw new ConfigError(`ENV_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

function withoutEmpty(values: Record<string, string | undefined>): Record<string, string> {
  // `KEY=` in a .env file means "not set", as it does for most dotenv users.
  return Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
}

const KNOWN_NAMES = [...Object.keys(envSchema.shape), ...ENV_ALIASES.map((entry) => entry.alias), 'ENV_FILE'];
const KNOWN = new Set(KNOWN_NAMES);

/** Whether two values of a setting mean the same once parsed (15m and 900000ms do). */
function sameSetting(setting: keyof typeof envSchema.shape, a: string, b: string): boolean {
  const [left, right] = [envSchema.shape[setting].safeParse(a), envSchema.shape[setting].safeParse(b)];
  return left.success && right.success ? JSON.stringify(left.data) === JSON.stringify(right.data) : a.trim() === b.trim();
}

/**
 * One source's values with each alias read as its setting. Done per source, so that the
 * order of sources decides between them as it does for any setting.
 */
function resolveAliases(values: Record<string, string>, where: string, used: Map<string, string>): Record<string, string> {
  const resolved = { ...values };
  for (const { alias, setting, source, toSetting } of ENV_ALIASES) {
    const given = values[alias];
    if (given === undefined) continue;
    delete resolved[alias];
    const converted = toSetting(given);
    if (converted === null) throw new ConfigError(`Invalid configuration: ${alias} expected a whole number (${source}) (got "${given}")`);
    const canonical = values[setting];
    if (canonical !== undefined && !sameSetting(setting, canonical, converted)) {
      throw new ConfigError(
        `Invalid configuration: ${alias} ("${given}") and ${setting} ("${canonical}") are both set${where} and differ: ${alias} is ${source}'s name for ${setting}, keep one`,
      );
    }
    resolved[setting] = canonical ?? converted;
    used.set(alias, setting);
  }
  return resolved;
}

/** Names a settings file holds that Parley does not read, each with the nearest name it does. */
function unknownNames(values: Record<string, string>, file: string): ConfigNotices['unknown'] {
  return Object.keys(values)
    .filter((name) => !KNOWN.has(name))
    .map((name) => ({ name, file, closest: closestName(name, KNOWN_NAMES) }));
}

/**
 * Reads settings from `.env`, then the file named by ENV_FILE, then the process environment
 * (later sources win), validates them once and returns a frozen object. Nothing else in
 * Parley reads process.env.
 */
export function loadConfig({ env, cwd }: LoadConfigOptions): Config {
  const dotenvPath = path.join(cwd, '.env');
  const fromDotenv = existsSync(dotenvPath) ? readEnvFile(dotenvPath) : {};
  const envFile = env.ENV_FILE ?? fromDotenv.ENV_FILE;
  const envFilePath = envFile ? path.resolve(cwd, envFile) : undefined;
  const fromEnvFile = envFilePath ? readEnvFile(envFilePath) : {};
  const aliases = new Map<string, string>();
  const merged = {
    ...resolveAliases(withoutEmpty(fromDotenv), ' in .env', aliases),
    ...resolveAliases(withoutEmpty(fromEnvFile), ` in ${envFile ?? 'ENV_FILE'}`, aliases),
    ...resolveAliases(withoutEmpty(env), ' in the environment', aliases),
  };
  // Only the files: the process environment is full of other programs' names (PATH, a
  // container platform's REDIS_PORT, a CI's GITHUB_SHA) that would bury a real misspelling.
  const unknown = [...unknownNames(fromDotenv, '.env'), ...(envFilePath ? unknownNames(fromEnvFile, envFile ?? envFilePath) : [])];

  const result = envSchema.safeParse(merged);
  if (!result.success) {
    const aliasOf = new Map([...aliases].map(([alias, setting]) => [setting, alias]));
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.join('.');
      const given = merged[key];
      const message = issue.code === 'invalid_type' && given === undefined ? 'is required' : issue.message;
      const name = aliasOf.has(key) ? `${key} (given as ${aliasOf.get(key)})` : key;
      return `${name} ${message}${given !== undefined && !/SECRET|KEY|TOKEN|PASSWORD|ISSUERS/.test(key) ? ` (got "${given}")` : ''}`;
    });
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }

  const parsed = result.data;
  if (parsed.NODE_ENV === 'production' && !parsed.SESSION_SECRET) {
    throw new ConfigError('Invalid configuration: SESSION_SECRET is required in production (at least 32 characters)');
  }
  if (parsed.NODE_ENV === 'production' && parsed.TURN_HOST && !parsed.TURN_SECRET) {
    throw new ConfigError("Invalid configuration: TURN_SECRET is required with TURN_HOST in production (it must match Coturn's static-auth-secret)");
  }
  if (parsed.NODE_ENV === 'production' && parsed.TRUST_PROXY === true) {
    throw new ConfigError(
      'Invalid configuration: TRUST_PROXY=true is refused in production (any client could choose its IP with X-Forwarded-For and escape the per-IP limits): set the number of proxies in front, e.g. 1, or their addresses',
    );
  }
  if (parsed.REDIS_URL && parsed.REDIS_SOCKET_PATH) {
    throw new ConfigError('Invalid configuration: REDIS_URL and REDIS_SOCKET_PATH are both set: keep one (the URL, or the unix socket)');
  }
  if (parsed.JOBS_BACKEND === 'redis' && !parsed.REDIS_URL && !parsed.REDIS_SOCKET_PATH) {
    throw new ConfigError(
      'Invalid configuration: JOBS_BACKEND=redis needs REDIS_URL or REDIS_SOCKET_PATH (the in-process Redis emulation cannot run the job queue)',
    );
  }
  if (parsed.FORCE_HTTPS === true && parsed.TRUST_PROXY === false) {
    throw new ConfigError(
      'Invalid configuration: FORCE_HTTPS=on needs TRUST_PROXY: Parley itself serves plain HTTP, only the proxy in front knows whether the client used https (X-Forwarded-Proto)',
    );
  }
  if (parsed.NODE_ENV === 'production' && parsed.PAYMENT_PROVIDER === 'local') {
    throw new ConfigError('Invalid configuration: PAYMENT_PROVIDER=local is refused in production (its page takes no money): configure Stripe or PayPal');
  }
  if (parsed.NODE_ENV === 'production' && !parsed.METRICS_TOKEN) {
    throw new ConfigError('Invalid configuration: METRICS_TOKEN is required in production (at least 16 characters), so that /metrics is not public');
  }
  if (parsed.NODE_ENV === 'production' && !parsed.OLLAMA_KEY_ENCRYPTION_KEY) {
    throw new ConfigError(
      "Invalid configuration: OLLAMA_KEY_ENCRYPTION_KEY is required in production (32 bytes, base64 or hex: openssl rand -base64 32); it encrypts users' stored Ollama keys",
    );
  }
  return Object.freeze({
    ...parsed,
    SESSION_SECRET: parsed.SESSION_SECRET ?? randomBytes(32).toString('base64url'),
    APP_URL: parsed.APP_URL ?? defaultAppUrl(parsed.HOST, parsed.PORT),
    FORCE_HTTPS: parsed.FORCE_HTTPS ?? (parsed.NODE_ENV === 'production' && parsed.TRUST_PROXY !== false),
    notices: {
      aliases: [...aliases].map(([alias, setting]) => ({ alias, setting })),
      unknown,
      warnings:
        parsed.NODE_ENV === 'production' && parsed.FORCE_HTTPS === undefined && parsed.TRUST_PROXY === false
          ? ['TRUST_PROXY is not set: plain-HTTP requests are not redirected to https (only a proxy in front can tell them, by X-Forwarded-Proto)']
          : [],
    },
  });
}

/** Where this server answers when APP_URL is not set: a wildcard bind is reached as localhost. */
function defaultAppUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}
