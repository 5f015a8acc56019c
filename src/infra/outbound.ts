import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import net from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';

/**
 * Outbound HTTP that a user-supplied URL cannot turn against the server's own network (SSRF).
 * Every address a request would connect to is classified first, after DNS resolution, and only
 * public addresses are reached, unless the host:port is one the operator configured (`trusted`).
 */

export type AddressClass = 'public' | 'loopback' | 'private' | 'link_local' | 'unique_local' | 'shared' | 'unspecified' | 'multicast' | 'reserved';

type Range = readonly [base: number, prefix: number, addressClass: AddressClass];

const IPV4_RANGES: readonly Range[] = [
  [ipv4('0.0.0.0'), 8, 'unspecified'],
  [ipv4('10.0.0.0'), 8, 'private'],
  [ipv4('100.64.0.0'), 10, 'shared'],
  [ipv4('127.0.0.0'), 8, 'loopback'],
  [ipv4('169.254.0.0'), 16, 'link_local'],
  [ipv4('172.16.0.0'), 12, 'private'],
  [ipv4('192.0.0.0'), 24, 'reserved'],
  [ipv4('192.0.2.0'), 24, 'reserved'],
  // the deprecated 6to4 relay anycast
  [ipv4('192.88.99.0'), 24, 'reserved'],
  [ipv4('192.168.0.0'), 16, 'private'],
  [ipv4('198.18.0.0'), 15, 'reserved'],
  [ipv4('198.51.100.0'), 24, 'reserved'],
  [ipv4('203.0.113.0'), 24, 'reserved'],
  [ipv4('224.0.0.0'), 4, 'multicast'],
  // 240/4 holds the limited broadcast 255.255.255.255 too
  [ipv4('240.0.0.0'), 4, 'reserved'],
];

function ipv4(address: string): number {
  return address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

function classifyIPv4(value: number): AddressClass {
  for (const [base, prefix, addressClass] of IPV4_RANGES) {
    const size = 2 ** (32 - prefix);
    if (value >= base && value < base + size) return addressClass;
  }
  return 'public';
}

/** The 128-bit value of a valid IPv6 address (zone removed), a dotted IPv4 tail included. */
function ipv6(address: string): bigint {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (dotted) {
    const value = ipv4(dotted);
    text = `${text.slice(0, -dotted.length)}${Math.floor(value / 0x10000).toString(16)}:${(value % 0x10000).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function inPrefix(value: bigint, base: string, prefix: number): boolean {
  const shift = BigInt(128 - prefix);
  return value >> shift === ipv6(base) >> shift;
}

const LOW_32_BITS = 0xffffffffn;

function classifyIPv6(value: bigint): AddressClass {
  if (value === 0n) return 'unspecified';
  if (value === 1n) return 'loopback';
  // IPv4-compatible (::a.b.c.d), IPv4-mapped (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d)
  // and NAT64 (64:ff9b::a.b.c.d) all reach the IPv4 address they embed.
  if (inPrefix(value, '::', 96) || inPrefix(value, '::ffff:0:0', 96) || inPrefix(value, '::ffff:0:0:0', 96) || inPrefix(value, '64:ff9b::', 96)) {
    return classifyIPv4(Number(value & LOW_32_BITS));
  }
  // 6to4 carries its relay's IPv4 address in bits 16 to 47
  if (inPrefix(value, '2002::', 16)) return classifyIPv4(Number((value >> 80n) & LOW_32_BITS));
  if (inPrefix(value, 'fe80::', 10)) return 'link_local';
  if (inPrefix(value, 'fc00::', 7)) return 'unique_local';
  if (inPrefix(value, 'ff00::', 8)) return 'multicast';
  if (inPrefix(value, '2001:db8::', 32) || inPrefix(value, '2001::', 23) || inPrefix(value, '100::', 64)) return 'reserved';
  // Only global unicast is public; the rest of the space (site-local, local NAT64 64:ff9b:1::/48, unassigned) is not.
  return inPrefix(value, '2000::', 3) ? 'public' : 'reserved';
}

/** What kind of address `ip` is (IPv4 or IPv6, an IPv6 zone ignored); throws a TypeError for a non-address. */
export function classifyAddress(ip: string): AddressClass {
  const address = ip.replace(/%.*$/, '');
  if (net.isIPv4(address)) return classifyIPv4(ipv4(address));
  if (net.isIPv6(address)) return classifyIPv6(ipv6(address));
  throw new TypeError('not an IP address');
}

/** A request the guarded fetch refused to send; `code` says why. */
export class OutboundRefusedError extends Error {
  override name = 'OutboundRefusedError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The host is, or resolves to, an address that is not public. The message names the class, not the address. */
export class BlockedAddressError extends OutboundRefusedError {
  override name = 'BlockedAddressError';
  constructor(
    readonly hostname: string,
    readonly addressClass: AddressClass,
  ) {
    super(`refused to connect to ${hostname}: it is or resolves to a ${addressClass.replace('_', '-')} address`, 'ERR_BLOCKED_ADDRESS');
  }
}

/** The server answered 3xx: redirects are never followed, since their target was not vetted by whoever gave the URL. */
export class RedirectRefusedError extends OutboundRefusedError {
  override name = 'RedirectRefusedError';
  constructor(readonly status: number) {
    super(`the server answered ${status}, a redirect, which is not followed`, 'ERR_REDIRECT_REFUSED');
  }
}

/** Only http: and https: URLs are fetched. */
export class UnsupportedUrlError extends OutboundRefusedError {
  override name = 'UnsupportedUrlError';
  constructor(protocol: string) {
    super(`only http: and https: URLs are fetched, not ${protocol}`, 'ERR_UNSUPPORTED_URL');
  }
}

/** Resolves a host name to every address it has, as dns.lookup with `all: true`. */
export type Lookup = (hostname: string) => Promise<LookupAddress[]>;

export interface GuardedFetchOptions {
  /** Endpoints the operator configured (OLLAMA_BASE_URL): reached whatever their addresses are. */
  trusted: Array<{ hostname: string; port: number }>;
  connectTimeoutMs: number;
  /** From sending the request to the response's headers (undici's default otherwise: 300 s). */
  headersTimeoutMs?: number;
  /** The longest silence between two chunks of a response's body (undici's default otherwise: 300 s). */
  bodyTimeoutMs?: number;
  /** For tests: a resolver instead of the system's. */
  lookup?: Lookup;
}

/** A fetch (the `ollama` client's `fetch` option) over its own connection pool, closed with `close()`. */
export type GuardedFetch = typeof fetch & { close(): Promise<void> };

const systemLookup: Lookup = (hostname) => dnsLookup(hostname, { all: true });

function normalizeHostname(hostname: string): string {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return net.isIPv6(bare) ? new URL(`http://[${bare}]`).hostname.slice(1, -1) : bare;
}

/**
 * net's `lookup` hook: the connection goes to the addresses returned here, the very ones vetted, so
 * a second resolution (DNS rebinding) cannot swap in another. With `vet`, every address must be public.
 */
function connectLookup(lookup: Lookup, vet: boolean): net.LookupFunction {
  const resolve = async (hostname: string, family: number | string | undefined): Promise<LookupAddress[]> => {
    const found = await lookup(hostname);
    const wanted = family === 'IPv4' ? 4 : family === 'IPv6' ? 6 : family;
    const addresses = wanted === 4 || wanted === 6 ? found.filter((entry) => entry.family === wanted) : found;
    for (const { address } of vet ? addresses : []) {
      const addressClass = classifyAddress(address);
      if (addressClass !== 'public') throw new BlockedAddressError(hostname, addressClass);
    }
    if (addresses.length === 0) throw Object.assign(new Error(`no address found for ${hostname}`), { code: 'ENOTFOUND' });
    return addresses;
  };
  return (hostname, options, callback) => {
    resolve(hostname, options.family).then(
      (addresses) => (options.all ? callback(null, addresses) : callback(null, addresses[0]!.address, addresses[0]!.family)),
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

/**
 * A fetch that only connects to public addresses, or to a `trusted` host:port. Host names are
 * resolved and every address vetted before connecting, and the connection is pinned to them; IP
 * literals (which net connects to without a lookup) are vetted as they are. Redirects are refused
 * (RedirectRefusedError), as are schemes other than http: and https:. A refused address rejects
 * with BlockedAddressError itself; other network failures come as undici's `TypeError('fetch
 * failed')` with the undici error as `cause` (`code` UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT;
 * a body timeout errors the body stream the same way with UND_ERR_BODY_TIMEOUT).
 */
export function createGuardedFetch(options: GuardedFetchOptions): GuardedFetch {
  const lookup = options.lookup ?? systemLookup;
  const trusted = new Set(options.trusted.map(({ hostname, port }) => `${normalizeHostname(hostname)}|${port}`));
  const openTrusted = buildConnector({ timeout: options.connectTimeoutMs, lookup: connectLookup(lookup, false) });
  const openVetted = buildConnector({ timeout: options.connectTimeoutMs, lookup: connectLookup(lookup, true) });

  const agent = new Agent({
    ...(options.headersTimeoutMs === undefined ? {} : { headersTimeout: options.headersTimeoutMs }),
    ...(options.bodyTimeoutMs === undefined ? {} : { bodyTimeout: options.bodyTimeoutMs }),
    connect: (connectOptions, callback) => {
      const hostname = normalizeHostname(connectOptions.hostname);
      const port = Number(connectOptions.port) || (connectOptions.protocol === 'https:' ? 443 : 80);
      if (trusted.has(`${hostname}|${port}`)) return openTrusted(connectOptions, callback);
      const literalClass = net.isIP(hostname) ? classifyAddress(hostname) : undefined;
      if (literalClass && literalClass !== 'public') return callback(new BlockedAddressError(hostname, literalClass), null);
      return openVetted(connectOptions, callback);
    },
  });

  const guarded = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (typeof input !== 'string' && !(input instanceof URL)) throw new TypeError('the guarded fetch takes a URL, not a Request');
    const url = new URL(input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UnsupportedUrlError(url.protocol);
    let response;
    try {
      response = await undiciFetch(url, { ...(init as UndiciRequestInit), redirect: 'manual', dispatcher: agent });
    } catch (error) {
      if (error instanceof TypeError && error.cause instanceof OutboundRefusedError) throw error.cause;
      throw error;
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new RedirectRefusedError(response.status);
    }
    return response;
  };
  return Object.assign(guarded, { close: () => agent.close() });
}
