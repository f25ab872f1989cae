/**
 * Outbound HTTP policy and SSRF checks for HTTP / HTTP_MULTIPART steps (SPEC §6.3, §6.4, §9).
 *
 * Pure and runtime-agnostic: only the WHATWG `URL` parser and `TextEncoder`. DNS is a port
 * (`Resolver`), injected by the runtime: Node passes `dns.promises.lookup(host, { all: true })`,
 * Workers have no DNS API and pass nothing (the resolved-address check is then skipped; Workers'
 * `fetch` cannot reach the host's private networks anyway).
 *
 * Order (pg_durable's, error texts verbatim):
 *   1. scheme (http/https only) — enforced in every mode, including `all` (see `checkScheme`);
 *   2. mode `disabled` → blocked;  mode `all` → nothing else is checked;
 *   3. host extraction (pg_durable's string rules);
 *   4. any IP literal → blocked (every spelling the WHATWG parser accepts: 127.1, 0x7f000001,
 *      2130706433, 0177.0.0.1, [::ffff:127.0.0.1], …);
 *   5. allow-list (azure, azure+test, allowlist);
 *   6. resolved addresses in restricted ranges (RESTRICTED_V4/V6; IPv4 embedded in IPv6 unwrapped) → blocked.
 *
 * Parser differentials: pg_durable checks the host its own string splitter extracts. `fetch`
 * connects to the host the WHATWG parser extracts, and the two disagree on inputs such as
 * `http://evil.example\@x.blob.core.windows.net/` (WHATWG reads `\` as `/`: the host is
 * `evil.example`). So steps 4–6 run on **both** hosts, and both must pass.
 *
 * DNS rebinding: step 6 resolves the name, then the connection resolves it again. On Node the
 * connection's own lookup applies the same check (`checkResolvedAddresses`, via
 * src/runtime/node/guarded-fetch.ts), so the address actually dialled is the one checked. A single
 * restricted address blocks the whole name (pg_durable filters them out and connects to the rest).
 * Workers have no DNS port: step 6 is skipped there (see docs/SECURITY.md, "On Cloudflare Workers").
 * Redirects are never followed (the executor passes `redirect: 'manual'`), so a 302 cannot bounce a
 * request to an internal host.
 */

export const EGRESS_MODES = ['disabled', 'azure', 'azure+test', 'allowlist', 'all'] as const;
export type EgressMode = (typeof EGRESS_MODES)[number];

export interface EgressPolicy {
  mode: EgressMode;
  /** `pgflare.http_allowed_hosts`, parsed (`parseAllowedHosts`); used by mode `allowlist` only. */
  allowedHosts: readonly string[];
}

/** DNS port: every address `host` resolves to (IPv4 dotted quads and/or IPv6 text). */
export type Resolver = (host: string) => Promise<string[]>;

/** Rule 6 as a function: the refusal text for `host` resolving to `addresses`, or null when they may be dialled. */
export type AddressCheck = (host: string, addresses: readonly string[]) => string | null;

/** Data-plane Azure suffixes (SPEC §6.4 rule 4). Each starts with `.`, so the apex never matches. */
export const AZURE_DOMAIN_SUFFIXES: readonly string[] = [
  '.blob.core.windows.net',
  '.blob.storage.azure.net',
  '.queue.core.windows.net',
  '.table.core.windows.net',
  '.file.core.windows.net',
  '.azurewebsites.net',
  '.azure-api.net',
  '.documents.azure.com',
  '.servicebus.windows.net',
  '.openai.azure.com',
  '.cognitiveservices.azure.com',
  '.vault.azure.net',
  '.redis.cache.windows.net',
  '.database.windows.net',
  '.kusto.windows.net',
  '.azurefd.net',
  '.azureedge.net',
  '.azure-devices.net',
  '.trafficmanager.net',
  '.cloudapp.azure.com',
];
export const AZURE_EXACT_HOSTS: readonly string[] = ['api.github.com'];
export const AZURE_TEST_EXACT_HOSTS: readonly string[] = ['httpbingo.org'];

export const DISABLED_ERROR =
  "Blocked: outbound HTTP requests are disabled. Rebuild with the 'http-allow-azure-domains' Cargo feature to enable them.";
export const NO_HOST_ERROR = 'Blocked: unable to extract hostname from URL.';

export function schemeError(scheme: string): string {
  return `Blocked: unsupported URL scheme '${scheme}'. Only http and https are allowed.`;
}

export function bareIpError(mode: EgressMode): string {
  return mode === 'allowlist'
    ? 'Blocked: requests to bare IP addresses are not permitted. Use a hostname listed in pgflare.http_allowed_hosts instead.'
    : 'Blocked: requests to bare IP addresses are not permitted. Use an approved Azure service hostname instead.';
}

export function notAllowedError(host: string, mode: EgressMode): string {
  return mode === 'allowlist'
    ? `Blocked: '${host}' is not in the allowed endpoint list. Only requests to hosts listed in pgflare.http_allowed_hosts are permitted.`
    : `Blocked: '${host}' is not in the allowed endpoint list. Only requests to approved Azure service domains are permitted.`;
}

export function restrictedError(host: string): string {
  return `Blocked: the resolved IP address for '${host}' is in a restricted range. df.http() cannot access private or internal network addresses.`;
}

/** `pg_durable.http_policy` text → mode (trimmed, case-insensitive); undefined when unknown. */
export function parseEgressMode(text: string | null | undefined): EgressMode | undefined {
  const t = (text ?? '').trim().toLowerCase();
  return (EGRESS_MODES as readonly string[]).includes(t) ? (t as EgressMode) : undefined;
}

/**
 * `pgflare.http_allowed_hosts` (comma-separated) → normalised entries: trimmed, lower-cased, a
 * leading `*.` read as `.`; empty entries dropped. `example.com` allows `example.com` and every
 * subdomain; `.example.com` allows subdomains only.
 */
export function parseAllowedHosts(csv: string | null | undefined): string[] {
  const out: string[] = [];
  for (const raw of (csv ?? '').split(',')) {
    let e = raw.trim().toLowerCase();
    if (e.startsWith('*.')) e = e.slice(1);
    if (e === '' || e === '.') continue;
    out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rules 1–2: scheme and host, by pg_durable's string rules
// ---------------------------------------------------------------------------------------------

/** Text before the first `://`, lower-cased (the whole URL when there is none, as pg_durable does). */
export function urlScheme(url: string): string {
  const i = url.indexOf('://');
  return (i < 0 ? url : url.slice(0, i)).toLowerCase();
}

/** Rule 1; null when the scheme is http or https. */
export function checkScheme(url: string): string | null {
  const s = urlScheme(url);
  return s === 'http' || s === 'https' ? null : schemeError(s);
}

/**
 * Rule 2: after `://`, cut at the first `/`, `?` or `#`, keep what follows the last `@`; `[v6]`
 * loses its brackets, anything else is cut at its last `:`. Null when empty or malformed.
 */
export function extractHost(url: string): string | null {
  const i = url.indexOf('://');
  if (i < 0) return null;
  const after = url.slice(i + 3);
  const end = after.search(/[/?#]/);
  const authority = end < 0 ? after : after.slice(0, end);
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  let host: string;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return null;
    host = hostPort.slice(1, close);
  } else {
    const colon = hostPort.lastIndexOf(':');
    host = colon < 0 ? hostPort : hostPort.slice(0, colon);
  }
  return host === '' ? null : host;
}

// ---------------------------------------------------------------------------------------------
// IP addresses
// ---------------------------------------------------------------------------------------------

/** Strict dotted-quad IPv4 → 4 bytes (no shorthand, no leading zeros beyond "0"). */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let k = 0; k < 4; k++) {
    const p = parts[k];
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[k] = n;
  }
  return out;
}

/** IPv6 text (optional `[…]`, optional `%zone`, optional dotted IPv4 tail) → 16 bytes. */
export function parseIPv6(text: string): Uint8Array | null {
  let t = text;
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const pct = t.indexOf('%');
  if (pct >= 0) t = t.slice(0, pct);
  if (t === '' || !/^[0-9A-Fa-f:.]+$/.test(t)) return null;
  const halves = t.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let k = 0; k < items.length; k++) {
      const it = items[k];
      if (it.includes('.')) {
        if (k !== items.length - 1) return null;
        const v4 = parseIPv4(it);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(it)) return null;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  // A dotted tail is only allowed at the very end.
  if (halves.length === 2 && halves[0].includes('.')) return null;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    if (head.length !== 8) return null;
    all = head;
  }
  const out = new Uint8Array(16);
  all.forEach((g, k) => {
    out[2 * k] = g >> 8;
    out[2 * k + 1] = g & 0xff;
  });
  return out;
}

/** A CIDR block: network bytes and prefix length. */
interface Cidr {
  net: Uint8Array;
  bits: number;
  why: string;
}

function cidr(text: string, why: string): Cidr {
  const [addr, len] = text.split('/');
  const net = parseIPv4(addr) ?? parseIPv6(addr);
  if (!net) throw new Error(`bad CIDR ${text}`);
  return { net, bits: Number(len), why };
}

function inCidr(b: Uint8Array, c: Cidr): boolean {
  if (b.length !== c.net.length) return false;
  let bits = c.bits;
  for (let k = 0; bits > 0; k++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[k] & mask) !== (c.net[k] & mask)) return false;
  }
  return true;
}

/**
 * IPv4 ranges that are not globally reachable (IANA special-purpose registry, plus multicast,
 * reserved and broadcast). Every address a request may connect to is checked against these.
 */
export const RESTRICTED_V4: readonly Cidr[] = [
  cidr('0.0.0.0/8', '"this network"'),
  cidr('10.0.0.0/8', 'private'),
  cidr('100.64.0.0/10', 'shared address space (CGNAT)'),
  cidr('127.0.0.0/8', 'loopback'),
  cidr('169.254.0.0/16', 'link-local, cloud metadata'),
  cidr('172.16.0.0/12', 'private'),
  cidr('192.0.0.0/24', 'IETF protocol assignments'),
  cidr('192.0.2.0/24', 'documentation (TEST-NET-1)'),
  cidr('192.88.99.0/24', '6to4 relay anycast (deprecated)'),
  cidr('192.168.0.0/16', 'private'),
  cidr('198.18.0.0/15', 'benchmarking'),
  cidr('198.51.100.0/24', 'documentation (TEST-NET-2)'),
  cidr('203.0.113.0/24', 'documentation (TEST-NET-3)'),
  cidr('224.0.0.0/4', 'multicast'),
  cidr('240.0.0.0/4', 'reserved, and 255.255.255.255 broadcast'),
];

/**
 * IPv6 ranges blocked outright. Forms that embed an IPv4 address (mapped, translated, compatible,
 * NAT64, 6to4) are unwrapped and judged by the embedded address instead (`embeddedV4`).
 */
export const RESTRICTED_V6: readonly Cidr[] = [
  cidr('::/128', 'unspecified'),
  cidr('::1/128', 'loopback'),
  cidr('64:ff9b:1::/48', 'local-use IPv4/IPv6 translation'),
  cidr('100::/64', 'discard-only'),
  cidr('2001::/23', 'IETF protocol assignments, including Teredo 2001::/32 (tunnels to any IPv4 address)'),
  cidr('2001:db8::/32', 'documentation'),
  cidr('3fff::/20', 'documentation'),
  cidr('5f00::/16', 'segment routing SIDs'),
  cidr('fc00::/7', 'unique local'),
  cidr('fe80::/10', 'link-local'),
  cidr('fec0::/10', 'site-local (deprecated)'),
  cidr('ff00::/8', 'multicast'),
];

function isRestrictedV4(b: Uint8Array): boolean {
  return RESTRICTED_V4.some((c) => inCidr(b, c));
}

/** The IPv4 address an IPv6 address stands for, when it has that form; else null. */
export function embeddedV4(v6: Uint8Array): Uint8Array | null {
  const zeros = (from: number, to: number) => v6.subarray(from, to).every((x) => x === 0);
  if (zeros(0, 10) && v6[10] === 0xff && v6[11] === 0xff) return v6.slice(12); // ::ffff:a.b.c.d mapped
  if (zeros(0, 8) && v6[8] === 0xff && v6[9] === 0xff && zeros(10, 12)) return v6.slice(12); // ::ffff:0:a.b.c.d translated
  // ::a.b.c.d, deprecated IPv4-compatible (:: and ::1 themselves are in RESTRICTED_V6)
  if (zeros(0, 12) && !zeros(12, 15)) return v6.slice(12);
  if (v6[0] === 0x00 && v6[1] === 0x64 && v6[2] === 0xff && v6[3] === 0x9b && zeros(4, 12)) return v6.slice(12); // NAT64
  if (v6[0] === 0x20 && v6[1] === 0x02) return v6.slice(2, 6); // 2002:aabb:ccdd::/48 6to4
  return null;
}

/**
 * Rule 6: true when `address` (IPv4 or IPv6 text, as a resolver returns it) is not globally
 * reachable: in `RESTRICTED_V4` / `RESTRICTED_V6`, or an IPv6 form whose embedded IPv4 address
 * is (`embeddedV4`). pg_durable blocks a subset (0/8, 10/8, 100.64/10, 127/8, 169.254/16,
 * 172.16/12, 192.168/16, ::, ::1, fe80::/10, fc00::/7, IPv4-mapped). Text that is not an address
 * counts as restricted (fail closed).
 */
export function isRestrictedAddress(address: string): boolean {
  const v4 = parseIPv4(address);
  if (v4) return isRestrictedV4(v4);
  const v6 = parseIPv6(address);
  if (!v6) return true;
  if (RESTRICTED_V6.some((c) => inCidr(v6, c))) return true;
  const inner = embeddedV4(v6);
  return inner !== null && isRestrictedV4(inner);
}

/**
 * Rule 3: true when `host` is an IP literal in any spelling the WHATWG URL parser (what `fetch`
 * uses) accepts: dotted quads, shorthand (127.1), decimal (2130706433), hex (0x7f000001), octal
 * (0177.0.0.1), a trailing dot (1.2.3.4.), and IPv6 with or without brackets.
 */
export function isIpLiteral(host: string): boolean {
  if (parseIPv6(host)) return true;
  if (parseIPv4(host)) return true;
  if (host.includes(':') || host.includes('[')) return false;
  let parsed: string;
  try {
    parsed = new URL(`http://${host}/`).hostname;
  } catch {
    // The WHATWG parser rejects hosts that *look* numeric but are out of range (e.g. 1.2.3.999).
    return /^[0-9.]+$/.test(host) || /(^|\.)0x[0-9a-f]*\.?$/i.test(host);
  }
  return parsed.startsWith('[') || parseIPv4(parsed) !== null;
}

function isHostAllowed(hostLower: string, policy: EgressPolicy): boolean {
  if (policy.mode === 'allowlist') {
    return policy.allowedHosts.some((raw) => {
      // Entries may come unnormalised from a caller; `*.x` and `.x` both mean subdomains only.
      let e = raw.trim().toLowerCase();
      if (e.startsWith('*.')) e = e.slice(1);
      if (e === '' || e === '.') return false;
      return e.startsWith('.') ? hostLower.endsWith(e) : hostLower === e || hostLower.endsWith(`.${e}`);
    });
  }
  if (AZURE_DOMAIN_SUFFIXES.some((s) => hostLower.endsWith(s))) return true;
  if (AZURE_EXACT_HOSTS.includes(hostLower)) return true;
  return policy.mode === 'azure+test' && AZURE_TEST_EXACT_HOSTS.includes(hostLower);
}

// ---------------------------------------------------------------------------------------------
// The whole check
// ---------------------------------------------------------------------------------------------

export type StaticEgressDecision =
  | { ok: true; /** host to resolve for rule 5; null in mode `all` */ resolveHost: string | null }
  | { ok: false; error: string };

/** Rules 1–5 (everything but DNS). */
export function checkUrlStatic(url: string, policy: EgressPolicy): StaticEgressDecision {
  const scheme = checkScheme(url);
  if (scheme) return { ok: false, error: scheme };
  if (policy.mode === 'disabled') return { ok: false, error: DISABLED_ERROR };
  if (policy.mode === 'all') return { ok: true, resolveHost: null };

  const host = extractHost(url);
  if (host === null) return { ok: false, error: NO_HOST_ERROR };
  // The host fetch will actually connect to.
  let wire: string;
  try {
    wire = new URL(url).hostname;
  } catch {
    return { ok: false, error: NO_HOST_ERROR };
  }
  if (wire === '') return { ok: false, error: NO_HOST_ERROR };
  if (isIpLiteral(host) || isIpLiteral(wire)) return { ok: false, error: bareIpError(policy.mode) };
  if (!isHostAllowed(host.toLowerCase(), policy)) return { ok: false, error: notAllowedError(host, policy.mode) };
  if (!isHostAllowed(wire, policy)) return { ok: false, error: notAllowedError(wire, policy.mode) };
  return { ok: true, resolveHost: wire };
}

export type EgressDecision =
  | { ok: true }
  | { ok: false; error: string; /** 'dns' when the resolver itself failed (a connection error) */ kind: 'blocked' | 'dns' };

/**
 * Rule 6 on its own: null when `addresses` may be contacted. Stricter than pg_durable (see the
 * header comment): one restricted address blocks, and so does an empty list.
 */
export function checkResolvedAddresses(host: string, addresses: readonly string[]): string | null {
  if (addresses.length === 0 || addresses.some(isRestrictedAddress)) return restrictedError(host);
  return null;
}

/** All rules. Without a resolver (Workers) rule 6 is skipped. */
export async function checkEgress(url: string, policy: EgressPolicy, resolve?: Resolver): Promise<EgressDecision> {
  const d = checkUrlStatic(url, policy);
  if (!d.ok) return { ok: false, error: d.error, kind: 'blocked' };
  if (d.resolveHost === null || !resolve) return { ok: true };
  let addresses: string[];
  try {
    addresses = await resolve(d.resolveHost);
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e), kind: 'dns' };
  }
  const blocked = checkResolvedAddresses(d.resolveHost, addresses);
  return blocked ? { ok: false, error: blocked, kind: 'blocked' } : { ok: true };
}
