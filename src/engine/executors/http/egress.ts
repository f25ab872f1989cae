/**
 * Outbound HTTP policy and SSRF checks for HTTP / HTTP_MULTIPART steps: pg_durable's modes, host
 * extraction and messages, pgflare's wider address ranges and PGFLARE_HTTP_* overrides (docs/SECURITY.md 5).
 *
 * Pure and runtime-agnostic: the WHATWG `URL` parser and ipaddr.js (addresses.ts). DNS is a port
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
 *   6. resolved addresses in restricted ranges (addresses.ts; IPv4 embedded in IPv6 unwrapped) → blocked.
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

import { isIpLiteral, isRestrictedAddress } from './addresses.ts';

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

/** Data-plane Azure suffixes (pg_durable's allow-list). Each starts with `.`, so the apex never matches. */
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
