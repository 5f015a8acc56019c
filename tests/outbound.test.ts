import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ollama } from 'ollama';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BlockedAddressError,
  classifyAddress,
  createGuardedFetch,
  RedirectRefusedError,
  UnsupportedUrlError,
  type AddressClass,
  type GuardedFetch,
  type GuardedFetchOptions,
} from '../src/infra/outbound.js';
import { startFakeOllama } from './helpers/fake-ollama.js';

describe('classifyAddress', () => {
  const table: Array<[string, AddressClass]> = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['192.0.1.1', 'public'],
    ['198.20.0.1', 'public'],
    ['223.255.255.255', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.255', 'shared'],
    ['169.254.169.254', 'link_local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['192.88.99.1', 'reserved'],

    ['2606:4700:4700::1111', 'public'],
    ['2a00:1450:4001:80b::200e', 'public'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link_local'],
    ['febf:ffff::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['fc00::1', 'unique_local'],
    ['fd12:3456:789a::1', 'unique_local'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001:0db8:ffff:ffff::', 'reserved'],
    ['2001::1', 'reserved'],
    ['100::1', 'reserved'],
    ['fec0::1', 'reserved'],
    ['3fff:ffff::1', 'public'],
    ['4000::1', 'reserved'],

    // IPv4 inside IPv6: the embedded address decides
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a00:1', 'private'],
    ['::ffff:169.254.169.254', 'link_local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:8.8.8.8', 'public'],
    ['0:0:0:0:0:ffff:c0a8:101', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['::10.1.2.3', 'private'],
    ['::ffff:0:10.0.0.1', 'private'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link_local'],
    ['64:ff9b::808:808', 'public'],
    ['64:ff9b:1::a00:1', 'reserved'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:c0a8:101::1', 'private'],
    ['2002:808:808::1', 'public'],
  ];

  it.each(table)('%s is %s', (ip, expected) => {
    expect(classifyAddress(ip)).toBe(expected);
  });

  it('refuses what is not an IP address', () => {
    for (const notIp of ['localhost', '127.1', '256.0.0.1', '::ffff:1.2.3', 'example.com', '']) {
      expect(() => classifyAddress(notIp), notIp).toThrow(TypeError);
    }
  });
});

interface Local {
  port: number;
  /** TCP connections each listener accepted, by host. */
  connections: Record<string, number>;
  paths: string[];
  hosts: string[];
}

const servers: Server[] = [];
const fetches: GuardedFetch[] = [];

/** The same handler on 127.0.0.1, 127.0.0.2 and ::1 (when it is there), on one port. */
async function listen(handler: RequestListener, hosts = ['127.0.0.1', '127.0.0.2', '::1']): Promise<Local> {
  const local: Local = { port: 0, connections: {}, paths: [], hosts: [] };
  for (const host of hosts) {
    const server = createServer((req, res) => {
      local.paths.push(req.url ?? '');
      handler(req, res);
    });
    server.on('connection', () => (local.connections[host] = (local.connections[host] ?? 0) + 1));
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(local.port, host, () => resolve(true));
    });
    if (!listening) continue;
    servers.push(server);
    local.port ||= (server.address() as AddressInfo).port;
    local.hosts.push(host);
  }
  expect(local.hosts).toContain('127.0.0.1');
  return local;
}

function guard(options: Partial<GuardedFetchOptions> = {}): GuardedFetch {
  const guarded = createGuardedFetch({ trusted: [], connectTimeoutMs: 2_000, ...options });
  fetches.push(guarded);
  return guarded;
}

const totalConnections = (local: Local) => Object.values(local.connections).reduce((sum, n) => sum + n, 0);

const hello: RequestListener = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello');
};

afterEach(async () => {
  await Promise.all(fetches.splice(0).map((f) => f.close()));
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

let ipv6Loopback = false;
beforeAll(async () => {
  const probe = createServer();
  ipv6Loopback = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => resolve(true));
  });
  if (ipv6Loopback) await new Promise((resolve) => probe.close(resolve));
});

describe('createGuardedFetch: addresses', () => {
  it('reaches every loopback listener when trusted, which proves the counts below can see a connection', async () => {
    const local = await listen(hello);
    const trusted = guard({ trusted: local.hosts.map((hostname) => ({ hostname, port: local.port })) });
    for (const host of local.hosts) {
      const url = host.includes(':') ? `http://[${host}]:${local.port}/` : `http://${host}:${local.port}/`;
      const response = await trusted(url);
      expect(await response.text()).toBe('hello');
      expect(local.connections[host], host).toBe(1);
    }
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.0.0.2', 'loopback'],
    ['localhost', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['2130706433', 'loopback'],
    ['127.1', 'loopback'],
    ['0x7f.0.0.1', 'loopback'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    ['[::ffff:7f00:1]', 'loopback'],
  ])('refuses http://%s:port before connecting (%s)', async (host, addressClass) => {
    const local = await listen(hello);
    const error = await guard()(`http://${host}:${local.port}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlockedAddressError);
    expect(error).toMatchObject({ code: 'ERR_BLOCKED_ADDRESS', addressClass });
    expect(totalConnections(local)).toBe(0);
  });

  it('refuses http://[::1]:port before connecting', async (context) => {
    if (!ipv6Loopback) return context.skip('no IPv6 loopback here');
    const local = await listen(hello);
    await expect(guard()(`http://[::1]:${local.port}/`)).rejects.toMatchObject({ name: 'BlockedAddressError', addressClass: 'loopback' });
    expect(totalConnections(local)).toBe(0);
  });

  it('trusts a host only on its own port, and only that host', async () => {
    const local = await listen(hello, ['127.0.0.1', '127.0.0.2']);
    const other = await listen(hello, ['127.0.0.1']);
    const guarded = guard({ trusted: [{ hostname: '127.0.0.1', port: local.port }] });
    await expect(guarded(`http://127.0.0.1:${other.port}/`)).rejects.toBeInstanceOf(BlockedAddressError);
    await expect(guarded(`http://127.0.0.2:${local.port}/`)).rejects.toBeInstanceOf(BlockedAddressError);
    await expect(guarded(`http://localhost:${local.port}/`)).rejects.toBeInstanceOf(BlockedAddressError);
    expect(totalConnections(local) + totalConnections(other)).toBe(0);
    expect(await (await guarded(`http://127.0.0.1:${local.port}/`)).text()).toBe('hello');
  });

  it('trusts a host named as configured (localhost), resolved without vetting', async () => {
    const local = await listen(hello);
    const guarded = guard({ trusted: [{ hostname: 'LocalHost', port: local.port }] });
    expect(await (await guarded(`http://localhost:${local.port}/`)).text()).toBe('hello');
    expect(totalConnections(local)).toBe(1);
  });

  it('vets every address a name resolves to, and connects to none when one is not public', async () => {
    const local = await listen(hello);
    const asked: string[] = [];
    const answers: Record<string, Array<{ address: string; family: number }>> = {
      'rebind.example': [{ address: '127.0.0.1', family: 4 }],
      'intranet.example': [{ address: '10.1.2.3', family: 4 }],
      'metadata.example': [{ address: '169.254.169.254', family: 4 }],
      'cgnat.example': [{ address: '100.64.1.1', family: 4 }],
      'v6.example': [{ address: 'fd00::1', family: 6 }],
      'mapped.example': [{ address: '::ffff:192.168.0.1', family: 6 }],
      'mixed.example': [
        { address: 'fe80::1', family: 6 },
        { address: '127.0.0.1', family: 4 },
      ],
    };
    const guarded = guard({
      lookup: async (hostname) => {
        asked.push(hostname);
        return answers[hostname] ?? [];
      },
    });
    const expected: Record<string, AddressClass> = {
      'rebind.example': 'loopback',
      'intranet.example': 'private',
      'metadata.example': 'link_local',
      'cgnat.example': 'shared',
      'v6.example': 'unique_local',
      'mapped.example': 'private',
      'mixed.example': 'link_local',
    };
    for (const [hostname, addressClass] of Object.entries(expected)) {
      const error = await guarded(`http://${hostname}:${local.port}/api/tags`).catch((e: unknown) => e);
      expect(error, hostname).toBeInstanceOf(BlockedAddressError);
      expect(error).toMatchObject({ hostname, addressClass });
      // the message names the class, never the resolved address
      expect((error as Error).message).not.toMatch(/\d+\.\d+\.\d+\.\d+|::/);
    }
    expect(asked).toEqual(Object.keys(expected));
    expect(totalConnections(local)).toBe(0);
  });

  it('fails a name that resolves to nothing', async () => {
    const guarded = guard({ lookup: async () => [] });
    const error = await guarded('http://nowhere.example/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).cause).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('the ollama client with a guarded fetch: refused when untrusted, served when trusted', async () => {
    const fake = await startFakeOllama();
    try {
      const untrusted = new Ollama({ host: fake.url, fetch: guard() });
      await expect(untrusted.list()).rejects.toBeInstanceOf(BlockedAddressError);
      await expect(untrusted.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })).rejects.toBeInstanceOf(
        BlockedAddressError,
      );
      expect(fake.requests).toEqual([]);

      const trusted = new Ollama({ host: fake.url, fetch: guard({ trusted: [{ hostname: '127.0.0.1', port: fake.port }] }) });
      expect((await trusted.list()).models.length).toBeGreaterThan(0);
      let text = '';
      for await (const part of await trusted.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true }))
        text += part.message.content;
      expect(text).toBe('You said "hi". Tell me more about it!');
    } finally {
      await fake.close();
    }
  });
});

describe('createGuardedFetch: requests', () => {
  it('refuses a redirect without requesting its target, even when asked to follow', async () => {
    const local = await listen((req, res) => {
      if (req.url === '/target') return void res.end('should never be reached');
      res.writeHead(req.url === '/temporary' ? 307 : 302, { location: req.url === '/elsewhere' ? 'http://127.0.0.2/target' : '/target' });
      res.end();
    });
    const guarded = guard({ trusted: [{ hostname: '127.0.0.1', port: local.port }] });
    for (const path of ['/start', '/temporary', '/elsewhere']) {
      const error = await guarded(`http://127.0.0.1:${local.port}${path}`, { redirect: 'follow' }).catch((e: unknown) => e);
      expect(error, path).toBeInstanceOf(RedirectRefusedError);
      expect(error).toMatchObject({ code: 'ERR_REDIRECT_REFUSED', status: path === '/temporary' ? 307 : 302 });
    }
    expect(local.paths).toEqual(['/start', '/temporary', '/elsewhere']);
  });

  it('fetches only http: and https: URLs', async () => {
    const guarded = guard();
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/', 'data:text/plain,hi', 'gopher://127.0.0.1:11434/']) {
      const error = await guarded(url).catch((e: unknown) => e);
      expect(error, url).toBeInstanceOf(UnsupportedUrlError);
      expect(error).toMatchObject({ code: 'ERR_UNSUPPORTED_URL' });
    }
    await expect(guarded(new Request('http://127.0.0.1/'))).rejects.toThrow('not a Request');
  });

  it('sends method, headers and body, and hands back the streamed body', async () => {
    const local = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, auth: req.headers.authorization, body: Buffer.concat(chunks).toString() }));
      });
    });
    const guarded = guard({ trusted: [{ hostname: '127.0.0.1', port: local.port }] });
    const response = await guarded(new URL(`http://127.0.0.1:${local.port}/api/chat`), {
      method: 'POST',
      headers: { Authorization: 'Bearer k' },
      body: '{"a":1}',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ method: 'POST', auth: 'Bearer k', body: '{"a":1}' });
  });

  it('gives up on headers that do not come within headersTimeoutMs', async () => {
    const local = await listen(() => undefined);
    const guarded = guard({ trusted: [{ hostname: '127.0.0.1', port: local.port }], headersTimeoutMs: 50 });
    const error = await guarded(`http://127.0.0.1:${local.port}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).cause).toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it('gives up on a body that goes silent for bodyTimeoutMs', async () => {
    const local = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"first":true}\n');
    });
    const guarded = guard({ trusted: [{ hostname: '127.0.0.1', port: local.port }], bodyTimeoutMs: 50 });
    const response = await guarded(`http://127.0.0.1:${local.port}/`);
    const reader = response.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"first":true}\n');
    const error = await reader.read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).cause).toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
  });

  it('aborts with the caller signal', async () => {
    const local = await listen(() => undefined);
    const guarded = guard({ trusted: [{ hostname: '127.0.0.1', port: local.port }] });
    const controller = new AbortController();
    const pending = guarded(`http://127.0.0.1:${local.port}/`, { signal: controller.signal });
    await expect.poll(() => local.paths.length).toBe(1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });
});
