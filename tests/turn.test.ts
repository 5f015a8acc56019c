import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../src/infra/embedded-postgres.js';
import { iceServersFor } from '../src/modules/matchmaking/turn.js';

const run = promisify(execFile);
const SECRET = 'coturn-shared-secret-for-tests';
const hasCoturn = existsSync('/usr/bin/turnserver') && existsSync('/usr/bin/turnutils_uclient');
if (!hasCoturn && process.env.REQUIRE_TEST_TOOLS === '1') throw new Error('REQUIRE_TEST_TOOLS=1 but coturn is not installed (apt-get install coturn)');
if (!hasCoturn) console.warn('skipping the Coturn test: turnserver is not installed (apt-get install coturn)');

describe.runIf(hasCoturn)('TURN credentials against a real Coturn', () => {
  let port: number;
  let turnserver: ReturnType<typeof spawn>;
  beforeAll(async () => {
    port = await findFreePort();
    turnserver = spawn(
      'turnserver',
      [
        '-n',
        '--listening-ip=127.0.0.1',
        `--listening-port=${port}`,
        '--use-auth-secret',
        `--static-auth-secret=${SECRET}`,
        '--realm=parley.test',
        '--no-tls',
        '--no-dtls',
        '--allow-loopback-peers',
        '--no-cli',
        '--log-file=stdout',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // ready once it reports its listeners
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Total General servers')) resolve();
      };
      turnserver.stdout!.on('data', onData);
      turnserver.stderr!.on('data', onData);
      turnserver.once('exit', (code) => reject(new Error(`turnserver exited with ${code}: ${output}`)));
    });
  });
  afterAll(() => {
    turnserver?.kill('SIGTERM');
  });

  async function allocate(username: string, password: string): Promise<string> {
    const { stdout, stderr } = await run('turnutils_uclient', ['-p', String(port), '-u', username, '-w', password, '-n', '1', '-m', '1', '-y', '127.0.0.1'], {
      timeout: 20_000,
    }).catch((error: { stdout: string; stderr: string }) => error);
    return `${stdout}${stderr}`;
  }

  it('allocates a relay with the credentials of match_found, and refuses tampered ones', async () => {
    const [, turn] = iceServersFor('7c9e6679-7425-40de-944b-e07fc1f90ae7', new Date(), { host: '127.0.0.1', port, secret: SECRET, ttlSeconds: 3600 });
    const ok = await allocate(turn!.username!, turn!.credential!);
    expect(ok).not.toContain('Cannot complete Allocation');
    // the client got past allocation and ran its relay exchange to the summary (a UDP packet
    // may be lost on a loaded CI machine; that says nothing about the credentials)
    expect(ok).toMatch(/Total lost packets \d+/);

    const tamperedPassword = await allocate(turn!.username!, `x${turn!.credential!.slice(1)}`);
    expect(tamperedPassword).toContain('Cannot complete Allocation');
    const [expiry] = turn!.username!.split(':');
    const otherUser = await allocate(`${expiry}:another-user`, turn!.credential!);
    expect(otherUser).toContain('Cannot complete Allocation');
  }, 60_000);

  it('refuses credentials that have expired', async () => {
    const [, turn] = iceServersFor('7c9e6679-7425-40de-944b-e07fc1f90ae7', new Date(Date.now() - 7_200_000), {
      host: '127.0.0.1',
      port,
      secret: SECRET,
      ttlSeconds: 3600,
    });
    expect(await allocate(turn!.username!, turn!.credential!)).toContain('Cannot complete Allocation');
  }, 60_000);
});
