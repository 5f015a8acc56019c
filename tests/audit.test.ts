import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { buildTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { login, PASSWORD, register, uniqueEmail } from './helpers/auth.js';
import { manualClock } from './helpers/clock.js';
import { repoRoot, run } from './helpers/spawn.js';

const clock = manualClock(new Date('2031-01-15T12:00:00Z'));
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ clock });
});
afterAll(() => t.close());

async function partitions(): Promise<string[]> {
  const rows = await t.container.db.query<Array<{ name: string }>>(
    "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'activity_logs'::regclass ORDER BY 1",
  );
  return rows.map((row) => row.name);
}

describe('activity log partitions', () => {
  it('exist for the current and the next month from the start', async () => {
    expect(await partitions()).toEqual(expect.arrayContaining(['activity_logs_2031_01', 'activity_logs_2031_02']));
  });

  it('are created ahead as time passes, once', async () => {
    clock.set(new Date('2031-02-20T00:00:00Z'));
    expect(await t.container.services.audit.ensurePartitions()).toEqual(['activity_logs_2031_03']);
    expect(await t.container.services.audit.ensurePartitions()).toEqual([]);
  });

  it('store each entry in the partition of its month', async () => {
    const { email } = await register(t.app);
    await login(t.app, email);
    const rows = await t.container.db.query<Array<{ partition: string; type: string }>>(
      "SELECT tableoid::regclass::text AS partition, type FROM activity_logs WHERE type IN ('register', 'login')",
    );
    expect(rows.map((row) => row.partition)).toEqual(['activity_logs_2031_02', 'activity_logs_2031_02']);
  });
});

describe('npm run admin:create', () => {
  const script = async (args: string[]) => {
    const spawned = run(path.join(repoRoot, 'node_modules/.bin/tsx'), [path.join(repoRoot, 'scripts/create-admin.ts'), ...args], {
      cwd: mkdtempSync(path.join(os.tmpdir(), 'parley-admin-')),
      env: {
        DATABASE_URL: await testDatabaseUrl(),
        TSX_TSCONFIG_PATH: path.join(repoRoot, 'tsconfig.json'),
        JWT_KEYS_DIR: inject('keysDir'),
        BCRYPT_COST: '4',
        DATABASE_MIGRATE_ON_START: 'false',
      },
    });
    return { code: await spawned.exit, output: spawned.output() };
  };

  it('promotes an existing account, and creates one when given a password', async () => {
    const student = await register(t.app);
    const promoted = await script(['--email', student.email]);
    expect(promoted.code).toBe(0);
    expect(promoted.output).toContain(`promoted ${student.email} to admin`);
    const [{ role }] = await t.container.db.query('SELECT role FROM users WHERE id = $1', [student.user.id]);
    expect(role).toBe('admin');

    const email = uniqueEmail('ops');
    expect((await script(['--email', email, '--password', PASSWORD])).code).toBe(0);
    expect((await login(t.app, email)).user.role).toBe('admin');
  }, 60_000);

  it('refuses a missing e-mail, and an unknown account without a password', async () => {
    const usage = await script([]);
    expect(usage.code).toBe(1);
    expect(usage.output).toContain('usage: npm run admin:create');
    const email = uniqueEmail('ghost');
    const noPassword = await script(['--email', email]);
    expect(noPassword.code).toBe(1);
    expect(noPassword.output).toContain('give a password to create one');
    const [{ count }] = await t.container.db.query('SELECT count(*)::int AS count FROM users WHERE email = $1', [email]);
    expect(count).toBe(0);
  }, 60_000);
});
