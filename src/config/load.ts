import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { envSchema, type Env } from './env.js';

export type Config = Readonly<Env & { SESSION_SECRET: string; APP_URL: string }>;

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

/**
 * Reads settings from `.env`, then the file named by ENV_FILE, then the process environment
 * (later sources win), validates them once and returns a frozen object. Nothing else in
 * Parley reads process.env.
 */
export function loadConfig({ env, cwd }: LoadConfigOptions): Config {
  const dotenvPath = path.join(cwd, '.env');
  const fromDotenv = existsSync(dotenvPath) ? readEnvFile(dotenvPath) : {};
  const envFile = env.ENV_FILE ?? fromDotenv.ENV_FILE;
  const fromEnvFile = envFile ? readEnvFile(path.resolve(cwd, envFile)) : {};
  const merged = { ...withoutEmpty(fromDotenv), ...withoutEmpty(fromEnvFile), ...withoutEmpty(env) };

  const result = envSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.join('.');
      const given = merged[key];
      const message = issue.code === 'invalid_type' && given === undefined ? 'is required' : issue.message;
      return `${key} ${message}${given !== undefined && !/SECRET|KEY|TOKEN|PASSWORD|ISSUERS/.test(key) ? ` (got "${given}")` : ''}`;
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
  if (parsed.JOBS_BACKEND === 'redis' && !parsed.REDIS_URL) {
    throw new ConfigError('Invalid configuration: JOBS_BACKEND=redis needs REDIS_URL (the in-process Redis emulation cannot run the job queue)');
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
  });
}

/** Where this server answers when APP_URL is not set: a wildcard bind is reached as localhost. */
function defaultAppUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}
