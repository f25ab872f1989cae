/**
 * The address classification (addresses.ts, on ipaddr.js) against the policy stated as CIDR blocks
 * below: hand-picked rows, then generated edges of every block and every IPv6 form embedding IPv4.
 */
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { embeddedV4, isIpLiteral, isRestrictedAddress, parseIPv6 } from './addresses.ts';

/** A CIDR block: network bytes and prefix length. */
interface Cidr {
  net: Uint8Array;
  bits: number;
  why: string;
}

function cidr(text: string, why: string): Cidr {
  const [addr, bits] = ipaddr.parseCIDR(text);
  return { net: Uint8Array.from(addr.toByteArray()), bits, why };
}

/**
 * The policy: IPv4 ranges that are not globally reachable (IANA special-purpose registry, plus
 * multicast, reserved and broadcast), and IPv6 ranges blocked outright; IPv6 forms that embed an
 * IPv4 address are judged by that address.
 */
const RESTRICTED_V4: readonly Cidr[] = [
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
const RESTRICTED_V6: readonly Cidr[] = [
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

describe('isIpLiteral', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1', true],
    ['0x7f000001', true],
    ['2130706433', true],
    ['0177.0.0.1', true],
    ['1.2.3.4.', true],
    ['1.2.3.999', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['example.com', false],
    ['1.2.3.example', false],
    ['x0x7f', false],
    ['a1.example', false],
  ])('%s → %s', (host, expected) => {
    expect(isIpLiteral(host)).toBe(expected);
  });
});

describe('isRestrictedAddress', () => {
  // Hand-picked rows: pg_durable's ranges and their edges, and what must stay reachable.
  it.each([
    ['0.0.0.0', true],
    ['0.255.255.255', true],
    ['1.0.0.0', false],
    ['10.0.0.1', true],
    ['100.64.0.1', true],
    ['100.127.255.255', true],
    ['100.128.0.0', false],
    ['100.63.255.255', false],
    ['127.0.0.1', true],
    ['127.255.255.255', true],
    ['169.254.169.254', true],
    ['172.15.255.255', false],
    ['172.16.0.0', true],
    ['172.31.255.255', true],
    ['172.32.0.0', false],
    ['192.168.1.1', true],
    ['192.169.0.1', false],
    ['192.0.0.8', true],
    ['192.0.1.0', false],
    ['198.17.255.255', false],
    ['198.18.0.0', true],
    ['198.19.255.255', true],
    ['198.20.0.0', false],
    ['223.255.255.255', false],
    ['224.0.0.1', true],
    ['239.255.255.250', true],
    ['240.0.0.1', true],
    ['255.255.255.255', true],
    ['8.8.8.8', false],
    ['20.60.0.1', false],
    ['::', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::2', false],
    ['fe80::1', true],
    ['fe80::1%eth0', true],
    ['febf::1', true],
    ['fec0::1', true],
    ['fc00::1', true],
    ['fd12:3456::1', true],
    ['fe00::1', false],
    ['fbff:ffff::1', false],
    ['ff02::1', true],
    ['ff0e::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['0:0:0:0:0:ffff:7f00:1', true],
    ['::ffff:169.254.169.254', true],
    ['::ffff:10.0.0.1', true],
    ['::ffff:93.184.216.34', false],
    ['::ffff:0:127.0.0.1', true],
    ['::ffff:0:8.8.8.8', false],
    ['::127.0.0.1', true],
    ['::8.8.8.8', false],
    ['64:ff9b::a9fe:a9fe', true],
    ['64:ff9b::808:808', false],
    ['64:ff9b:1::808:808', true],
    ['2002:7f00:1::', true],
    ['2002:a9fe:a9fe::1', true],
    ['2002:0808:0808::1', false],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', true],
    ['2001:db8::1', true],
    ['3fff::1', true],
    ['100::1', true],
    ['2001:4860:4860::8888', false],
    ['2606:4700:4700::1111', false],
    ['not-an-address', true],
    ['', true],
    ['127.0.0.1 ', true],
    ['1.2.3', true],
  ])('%s → %s', (addr, expected) => {
    expect(isRestrictedAddress(addr)).toBe(expected);
  });

  // Generated rows, one per range and form: the first and last address of every range is
  // restricted, the address just outside it is not (unless a neighbouring range covers it), and
  // every IPv6 form that embeds an IPv4 address is judged by that address.
  const bytesToV4 = (b: Uint8Array) => [...b].join('.');
  const bytesToV6 = (b: Uint8Array) =>
    Array.from({ length: 8 }, (_, k) => ((b[2 * k] << 8) | b[2 * k + 1]).toString(16)).join(':');
  const edge = (net: Uint8Array, bits: number, last: boolean) => {
    const out = Uint8Array.from(net);
    for (let i = bits; i < net.length * 8; i++) {
      const k = i >> 3;
      const m = 0x80 >> (i & 7);
      out[k] = last ? out[k] | m : out[k] & ~m;
    }
    return out;
  };
  const step = (b: Uint8Array, d: 1 | -1) => {
    const out = Uint8Array.from(b);
    for (let k = out.length - 1; k >= 0; k--) {
      const v = out[k] + d;
      out[k] = v & 0xff;
      if (v >= 0 && v <= 0xff) return out;
    }
    return null; // wrapped around the address space
  };
  const rows: Array<[string, string, boolean]> = [];
  for (const [table, fmt] of [
    [RESTRICTED_V4, bytesToV4],
    [RESTRICTED_V6, bytesToV6],
  ] as const) {
    for (const c of table) {
      const first = edge(c.net, c.bits, false);
      const last = edge(c.net, c.bits, true);
      rows.push([`${c.why}: first`, fmt(first), true], [`${c.why}: last`, fmt(last), true]);
      for (const out of [step(first, -1), step(last, 1)]) {
        if (!out) continue;
        const same = (a: Uint8Array, b: Uint8Array) => a.every((x, k) => x === b[k]);
        const inAnother = table.some((o) => o !== c && same(edge(out, o.bits, false), edge(o.net, o.bits, false)));
        rows.push([`${c.why}: just outside`, fmt(out), inAnother]);
      }
    }
    const v4Samples = RESTRICTED_V4.map((c) => edge(c.net, c.bits, true));
    for (const v4 of [...v4Samples, Uint8Array.of(8, 8, 8, 8)]) {
      const bad = isRestrictedAddress(bytesToV4(v4));
      const hex = `${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
      rows.push(
        [`mapped ${bytesToV4(v4)}`, `::ffff:${bytesToV4(v4)}`, bad],
        [`mapped hex ${bytesToV4(v4)}`, `::ffff:${hex}`, bad],
        [`translated ${bytesToV4(v4)}`, `::ffff:0:${bytesToV4(v4)}`, bad],
        [`NAT64 ${bytesToV4(v4)}`, `64:ff9b::${bytesToV4(v4)}`, bad],
        [`6to4 ${bytesToV4(v4)}`, `2002:${hex}::1`, bad],
      );
      if (v4[0] !== 0) rows.push([`compatible ${bytesToV4(v4)}`, `::${bytesToV4(v4)}`, bad]);
    }
  }
  it.each(rows)('%s: %s → %s', (_what, addr, expected) => {
    expect(isRestrictedAddress(addr)).toBe(expected);
  });

  it('embeddedV4 unwraps each form and nothing else', () => {
    expect([...embeddedV4(parseIPv6('::ffff:1.2.3.4')!)!]).toEqual([1, 2, 3, 4]);
    expect([...embeddedV4(parseIPv6('2002:102:304::')!)!]).toEqual([1, 2, 3, 4]);
    expect(embeddedV4(parseIPv6('2606:4700::1')!)).toBeNull();
  });
});

describe('parseIPv6', () => {
  it('parses compressed, full and dotted forms and rejects junk', () => {
    expect([...parseIPv6('::1')!]).toEqual([...new Array(15).fill(0), 1]);
    expect(parseIPv6('1:2:3:4:5:6:7:8')).not.toBeNull();
    expect(parseIPv6('1:2:3:4:5:6:1.2.3.4')).not.toBeNull();
    expect(parseIPv6('1::2::3')).toBeNull();
    expect(parseIPv6('1:2:3:4:5:6:7:8:9')).toBeNull();
    expect(parseIPv6('1:2:3:4:5:6:7')).toBeNull();
    expect(parseIPv6('1.2.3.4::')).toBeNull();
    expect(parseIPv6('12345::')).toBeNull();
    expect(parseIPv6('g::1')).toBeNull();
  });
});
