/**
 * IP addresses for the egress check (egress.ts rules 3 and 6): is a host an IP literal, and is an
 * address a request may dial globally reachable? Parsing, CIDR matching and the IANA special-purpose
 * ranges are ipaddr.js's; this module only says which of its ranges a request must not reach.
 *
 * Blocked: every range ipaddr.js names except `unicast`, with these exceptions:
 * - IPv4 `as112` and `amt` are globally reachable anycast: allowed, as `unicast`.
 * - IPv6 forms that embed an IPv4 address (mapped, translated, deprecated compatible `::a.b.c.d`,
 *   NAT64 64:ff9b::/96, 6to4) are judged by the embedded address (`embeddedV4`).
 * - IPv6 2001::/23 (IETF protocol assignments: Teredo tunnels to any IPv4 address, benchmarking,
 *   ORCHID, …) is blocked whatever name ipaddr.js gives its parts; AS112's other block
 *   (2620:4f:8000::/48) is globally reachable and allowed.
 * pg_durable blocks a subset (0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, ::,
 * ::1, fe80::/10, fc00::/7, IPv4-mapped).
 */
import ipaddr from 'ipaddr.js';

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;

/** ipaddr.js's IPv4 range names that a request may not reach. */
const BLOCKED_V4 = new Set<string>(['unspecified', 'broadcast', 'multicast', 'linkLocal', 'loopback', 'carrierGradeNat', 'private', 'reserved']);

/** ipaddr.js's IPv6 range names that a request may not reach outright (before unwrapping embedded IPv4). */
const BLOCKED_V6 = new Set<string>([
  'unspecified',
  'loopback',
  'linkLocal',
  'multicast',
  'uniqueLocal',
  'deprecatedSiteLocal',
  'discard',
  'segmentRouting',
  'reserved', // 2001::/23, 2001:db8::/32 (documentation), 3fff::/20 (documentation)
]);

const IETF_PROTOCOL_ASSIGNMENTS = ipaddr.IPv6.parseCIDR('2001::/23');
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

/** Strict dotted-quad IPv4 (no shorthand, no leading zeros beyond "0", no hex). */
function parseV4(text: string): IPv4 | null {
  return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : null;
}

/** IPv6 text (optional `[…]`, optional `%zone`, optional strict dotted IPv4 tail). */
function parseV6(text: string): IPv6 | null {
  let t = text;
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const pct = t.indexOf('%');
  if (pct >= 0) t = t.slice(0, pct);
  // ipaddr.js also reads hex and zero-padded octets in a dotted tail; an address is spelt one way.
  const tail = t.slice(t.lastIndexOf(':') + 1);
  if (tail.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(tail)) return null;
  return ipaddr.IPv6.isValid(t) ? ipaddr.IPv6.parse(t) : null;
}

/** IPv6 text → its 16 bytes; null when it is not an IPv6 address. */
export function parseIPv6(text: string): Uint8Array | null {
  const a = parseV6(text);
  return a ? Uint8Array.from(a.toByteArray()) : null;
}

/** The IPv4 address an IPv6 address stands for, when it has that form; else null. */
function embedded(v6: IPv6): IPv4 | null {
  const b = v6.toByteArray();
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const last4 = () => new ipaddr.IPv4(b.slice(12));
  switch (v6.range()) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d
    case 'rfc6145': // ::ffff:0:a.b.c.d, translated
      return last4();
    case 'rfc6052': // NAT64; its local-use 64:ff9b:1::/48 embeds no fixed position and is blocked below
      return v6.match(NAT64_WELL_KNOWN) ? last4() : null;
    case '6to4': // 2002:aabb:ccdd::/48
      return new ipaddr.IPv4(b.slice(2, 6));
    default:
      // ::a.b.c.d, deprecated IPv4-compatible (:: and ::1 themselves are unspecified and loopback)
      return zeros(0, 12) && !zeros(12, 15) ? last4() : null;
  }
}

/** `embedded` on bytes: the embedded IPv4 address's 4 bytes, or null. */
export function embeddedV4(v6: Uint8Array): Uint8Array | null {
  const inner = embedded(ipaddr.fromByteArray([...v6]) as IPv6);
  return inner ? Uint8Array.from(inner.toByteArray()) : null;
}

function isRestrictedV4(a: IPv4): boolean {
  return BLOCKED_V4.has(a.range());
}

function isRestrictedV6(a: IPv6): boolean {
  const range = a.range();
  if (BLOCKED_V6.has(range) || a.match(IETF_PROTOCOL_ASSIGNMENTS)) return true;
  if (range === 'rfc6052' && !a.match(NAT64_WELL_KNOWN)) return true; // local-use translation
  const inner = embedded(a);
  return inner !== null && isRestrictedV4(inner);
}

/**
 * Rule 6: true when `address` (IPv4 or IPv6 text, as a resolver returns it) is not globally
 * reachable (see the header). Text that is not an address counts as restricted (fail closed).
 */
export function isRestrictedAddress(address: string): boolean {
  const v4 = parseV4(address);
  if (v4) return isRestrictedV4(v4);
  const v6 = parseV6(address);
  return v6 === null || isRestrictedV6(v6);
}

/**
 * Rule 3: true when `host` is an IP literal in any spelling the WHATWG URL parser (what `fetch`
 * uses) accepts: dotted quads, shorthand (127.1), decimal (2130706433), hex (0x7f000001), octal
 * (0177.0.0.1), a trailing dot (1.2.3.4.), and IPv6 with or without brackets.
 */
export function isIpLiteral(host: string): boolean {
  if (parseV6(host) || parseV4(host)) return true;
  if (host.includes(':') || host.includes('[')) return false;
  let parsed: string;
  try {
    parsed = new URL(`http://${host}/`).hostname;
  } catch {
    // The WHATWG parser rejects hosts that *look* numeric but are out of range (e.g. 1.2.3.999).
    return /^[0-9.]+$/.test(host) || /(^|\.)0x[0-9a-f]*\.?$/i.test(host);
  }
  return parsed.startsWith('[') || parseV4(parsed) !== null;
}
