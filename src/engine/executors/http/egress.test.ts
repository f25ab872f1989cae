import { describe, expect, it } from 'vitest';
import {
  checkEgress,
  checkUrlStatic,
  extractHost,
  parseAllowedHosts,
  parseEgressMode,
  type EgressMode,
  type EgressPolicy,
  type Resolver,
} from './egress.ts';

const SCHEME = (s: string) => `Blocked: unsupported URL scheme '${s}'. Only http and https are allowed.`;
const NO_HOST = 'Blocked: unable to extract hostname from URL.';
const BARE_IP = 'Blocked: requests to bare IP addresses are not permitted. Use an approved Azure service hostname instead.';
const BARE_IP_LIST =
  'Blocked: requests to bare IP addresses are not permitted. Use a hostname listed in pgflare.http_allowed_hosts instead.';
const NOT_ALLOWED = (h: string) =>
  `Blocked: '${h}' is not in the allowed endpoint list. Only requests to approved Azure service domains are permitted.`;
const NOT_LISTED = (h: string) =>
  `Blocked: '${h}' is not in the allowed endpoint list. Only requests to hosts listed in pgflare.http_allowed_hosts are permitted.`;
const RESTRICTED = (h: string) =>
  `Blocked: the resolved IP address for '${h}' is in a restricted range. df.http() cannot access private or internal network addresses.`;
const DISABLED =
  "Blocked: outbound HTTP requests are disabled. Rebuild with the 'http-allow-azure-domains' Cargo feature to enable them.";

/** Fake DNS: unknown names resolve to a public address. */
const DNS: Record<string, string[]> = {
  'metadata.google.internal.azurewebsites.net': ['169.254.169.254'],
  'internal.blob.core.windows.net': ['10.1.2.3'],
  'mixed.blob.core.windows.net': ['20.60.1.1', '192.168.0.10'],
  'v6local.blob.core.windows.net': ['fd12:3456::1'],
  'mapped.blob.core.windows.net': ['::ffff:127.0.0.1'],
  'linklocal6.blob.core.windows.net': ['fe80::1'],
  'cgnat.blob.core.windows.net': ['100.64.0.1'],
  'empty.blob.core.windows.net': [],
  'localhost.corp.example': ['127.0.0.1', '::1'],
  'ok.corp.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'bench.blob.core.windows.net': ['198.18.0.1'],
  'mcast.blob.core.windows.net': ['224.0.0.251'],
  'sixtofour.blob.core.windows.net': ['2002:a9fe:a9fe::1'],
  'teredo.blob.core.windows.net': ['2001:0:4136:e378:8000:63bf:3fff:fdd2'],
};
const resolve: Resolver = async (host) => {
  if (host === 'nxdomain.blob.core.windows.net') throw new Error('getaddrinfo ENOTFOUND nxdomain.blob.core.windows.net');
  return DNS[host] ?? ['20.60.0.1'];
};

const pol = (mode: EgressMode, allowedHosts: string[] = []): EgressPolicy => ({ mode, allowedHosts });
const azure = pol('azure');

type Row = [url: string, expected: string | null, policy?: EgressPolicy];

const TABLE: Row[] = [
  // --- rule 1: scheme ---
  ['https://acct.blob.core.windows.net/c/b', null],
  ['HTTPS://acct.blob.core.windows.net/c/b', null],
  ['http://acct.blob.core.windows.net', null],
  ['ftp://acct.blob.core.windows.net/x', SCHEME('ftp')],
  ['file:///etc/passwd', SCHEME('file')],
  ['gopher://evil.example', SCHEME('gopher')],
  ['FILE:///etc/passwd', SCHEME('file')],
  ['no-scheme', SCHEME('no-scheme')],
  ['', SCHEME('')],
  ['javascript:alert(1)', SCHEME('javascript:alert(1)')],
  ['data:text/plain,hi', SCHEME('data:text/plain,hi')],
  // --- rule 2: host extraction ---
  ['https:///path', NO_HOST],
  ['https://user:pass@/x', NO_HOST],
  ['https://:443/x', NO_HOST],
  ['https://[::1/x', NO_HOST],
  // --- rule 3: bare IPs in every spelling ---
  ['http://127.0.0.1/', BARE_IP],
  ['http://127.0.0.1:8080/path', BARE_IP],
  ['http://8.8.8.8/', BARE_IP],
  ['http://169.254.169.254/latest/meta-data/', BARE_IP],
  ['http://127.1/', BARE_IP],
  ['http://0x7f000001/', BARE_IP],
  ['http://2130706433/', BARE_IP],
  ['http://0177.0.0.1/', BARE_IP],
  ['http://0x7f.0.0.1/', BARE_IP],
  ['http://1.2.3.4./', BARE_IP],
  ['http://[::1]/', BARE_IP],
  ['http://[::1]:8080/x', BARE_IP],
  ['http://[::ffff:127.0.0.1]/', BARE_IP],
  ['http://[fe80::1]/', BARE_IP],
  ['http://[2001:4860:4860::8888]/', BARE_IP],
  ['http://user:pw@10.0.0.1:80/', BARE_IP],
  ['http://127%2E0.0.1/', BARE_IP],
  ['http://acct.blob.core.windows.net@127.0.0.1/', BARE_IP],
  // one row per spelling fetch's parser turns into an address
  ['http://017700000001/', BARE_IP], // octal, whole
  ['http://0x7f.1/', BARE_IP], // hex + shorthand
  ['http://0x7F.0x0.0x0.0x1/', BARE_IP], // hex per part
  ['http://0177.01/', BARE_IP], // octal + shorthand
  ['http://127.0.1/', BARE_IP], // three parts
  ['http://00000127.0.0.1/', BARE_IP], // zero-padded decimal read as octal
  ['http://%31%32%37.0.0.1/', BARE_IP], // percent-encoded digits
  ['http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/', BARE_IP], // fullwidth digits (IDNA maps them)
  ['http://127\u30020\u30020\u30021/', BARE_IP], // ideographic full stops
  ['http://0/', BARE_IP], // 0.0.0.0
  ['http://4294967295/', BARE_IP], // 255.255.255.255
  ['http://4294967296/', NO_HOST], // out of range: fetch cannot parse it either
  ['http://169.254.169.254.:80/', BARE_IP],
  ['http://[0:0:0:0:0:0:0:1]/', BARE_IP],
  ['http://[::ffff:7f00:1]/', BARE_IP],
  ['http://[::ffff:0:127.0.0.1]/', BARE_IP],
  ['http://[::127.0.0.1]/', BARE_IP],
  ['http://[64:ff9b::a9fe:a9fe]/', BARE_IP],
  ['http://[2002:a9fe:a9fe::]/', BARE_IP],
  ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', BARE_IP],
  ['http://[fd00::1]/', BARE_IP],
  ['http://[FE80::1]/', BARE_IP],
  ['http://[ff02::1]/', BARE_IP],
  // --- rule 4: allow-list ---
  ['https://user:pw@acct.blob.core.windows.net:443/x?y#z', null],
  ['https://ACCT.Blob.Core.Windows.NET/', null],
  ['https://my-app.azurewebsites.net/api', null],
  ['https://x.openai.azure.com/openai/deployments', null],
  ['https://api.github.com/repos', null],
  ['https://blob.core.windows.net/', NOT_ALLOWED('blob.core.windows.net')],
  ['https://management.azure.com/subscriptions', NOT_ALLOWED('management.azure.com')],
  ['https://acct.blob.core.windows.net./x', NOT_ALLOWED('acct.blob.core.windows.net.')],
  ['https://acct.blob.core.windows.net.evil.com/', NOT_ALLOWED('acct.blob.core.windows.net.evil.com')],
  ['https://evilblob.core.windows.net/', NOT_ALLOWED('evilblob.core.windows.net')],
  ['https://acct-blob.core.windows.net/', NOT_ALLOWED('acct-blob.core.windows.net')],
  ['https://acct.blob.core.windows.net-evil.com/', NOT_ALLOWED('acct.blob.core.windows.net-evil.com')],
  ['https://example.com/?u=https://acct.blob.core.windows.net/', NOT_ALLOWED('example.com')],
  ['https://example.com#@acct.blob.core.windows.net', NOT_ALLOWED('example.com')],
  ['https://acct.blob.core.windows.net@example.com/', NOT_ALLOWED('example.com')],
  // parser differential: WHATWG reads '\' as '/', so fetch would connect to example.com
  ['https://example.com\\@acct.blob.core.windows.net/', NOT_ALLOWED('example.com')],
  ['https://httpbingo.org/get', NOT_ALLOWED('httpbingo.org')],
  ['https://httpbingo.org/get', null, pol('azure+test')],
  ['https://www.httpbingo.org/get', NOT_ALLOWED('www.httpbingo.org'), pol('azure+test')],
  ['https://api.github.com.evil.com/', NOT_ALLOWED('api.github.com.evil.com')],
  ['https://metadata.google.internal/computeMetadata/v1/', NOT_ALLOWED('metadata.google.internal')],
  // --- rule 5: resolved addresses ---
  ['https://metadata.google.internal.azurewebsites.net/', RESTRICTED('metadata.google.internal.azurewebsites.net')],
  ['https://internal.blob.core.windows.net/', RESTRICTED('internal.blob.core.windows.net')],
  ['https://mixed.blob.core.windows.net/', RESTRICTED('mixed.blob.core.windows.net')],
  ['https://v6local.blob.core.windows.net/', RESTRICTED('v6local.blob.core.windows.net')],
  ['https://mapped.blob.core.windows.net/', RESTRICTED('mapped.blob.core.windows.net')],
  ['https://linklocal6.blob.core.windows.net/', RESTRICTED('linklocal6.blob.core.windows.net')],
  ['https://cgnat.blob.core.windows.net/', RESTRICTED('cgnat.blob.core.windows.net')],
  ['https://empty.blob.core.windows.net/', RESTRICTED('empty.blob.core.windows.net')],
  ['https://Internal.BLOB.core.windows.net/', RESTRICTED('internal.blob.core.windows.net')],
  ['https://bench.blob.core.windows.net/', RESTRICTED('bench.blob.core.windows.net')],
  ['https://mcast.blob.core.windows.net/', RESTRICTED('mcast.blob.core.windows.net')],
  ['https://sixtofour.blob.core.windows.net/', RESTRICTED('sixtofour.blob.core.windows.net')],
  ['https://teredo.blob.core.windows.net/', RESTRICTED('teredo.blob.core.windows.net')],
  // --- allowlist mode ---
  ['https://api.corp.example/v1', null, pol('allowlist', ['corp.example'])],
  ['https://corp.example/v1', null, pol('allowlist', ['corp.example'])],
  ['https://corp.example/v1', NOT_LISTED('corp.example'), pol('allowlist', ['.corp.example'])],
  ['https://a.b.corp.example/v1', null, pol('allowlist', ['.corp.example'])],
  ['https://evilcorp.example/', NOT_LISTED('evilcorp.example'), pol('allowlist', ['corp.example'])],
  ['https://ok.corp.example/', null, pol('allowlist', ['other.example', 'corp.example'])],
  ['https://localhost.corp.example/', RESTRICTED('localhost.corp.example'), pol('allowlist', ['corp.example'])],
  ['https://acct.blob.core.windows.net/', NOT_LISTED('acct.blob.core.windows.net'), pol('allowlist', ['corp.example'])],
  ['http://10.0.0.5/', BARE_IP_LIST, pol('allowlist', ['10.0.0.5'])],
  ['https://anything.example/', NOT_LISTED('anything.example'), pol('allowlist', [])],
  // `*.x` entries (from the setting or the env var) mean subdomains only, in any case
  ['https://api.wild.example/', null, pol('allowlist', ['*.wild.example'])],
  ['https://a.b.wild.example/', null, pol('allowlist', ['*.Wild.Example'])],
  ['https://wild.example/', NOT_LISTED('wild.example'), pol('allowlist', ['*.wild.example'])],
  ['https://evilwild.example/', NOT_LISTED('evilwild.example'), pol('allowlist', ['*.wild.example'])],
  ['https://API.Corp.Example/', null, pol('allowlist', [' Corp.Example '])],
  // --- disabled and all ---
  ['https://acct.blob.core.windows.net/', DISABLED, pol('disabled')],
  ['ftp://acct.blob.core.windows.net/', SCHEME('ftp'), pol('disabled')],
  ['http://127.0.0.1:9/', null, pol('all')],
  ['http://[::1]/', null, pol('all')],
  ['https://internal.blob.core.windows.net/', null, pol('all')],
  ['file:///etc/passwd', SCHEME('file'), pol('all')],
];

describe('checkEgress (pg_durable\'s policy modes and SSRF rules)', () => {
  it('has a table of at least 40 URLs', () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(40);
  });

  it.each(TABLE)('%s', async (url, expected, policy = azure) => {
    const d = await checkEgress(url, policy, resolve);
    if (expected === null) expect(d).toEqual({ ok: true });
    else expect(d).toMatchObject({ ok: false, error: expected, kind: 'blocked' });
  });

  it('reports resolver failures as dns errors (the executor turns them into connection failures)', async () => {
    expect(await checkEgress('https://nxdomain.blob.core.windows.net/', azure, resolve)).toEqual({
      ok: false,
      kind: 'dns',
      error: 'getaddrinfo ENOTFOUND nxdomain.blob.core.windows.net',
    });
  });

  it('skips the resolved-address check without a resolver (Workers)', async () => {
    expect(await checkEgress('https://internal.blob.core.windows.net/', azure)).toEqual({ ok: true });
    expect(checkUrlStatic('https://internal.blob.core.windows.net/', azure)).toEqual({
      ok: true,
      resolveHost: 'internal.blob.core.windows.net',
    });
  });

  it('never resolves in mode all or when a static rule already failed', async () => {
    const seen: string[] = [];
    const spy: Resolver = async (h) => {
      seen.push(h);
      return ['127.0.0.1'];
    };
    await checkEgress('http://example.com/', pol('all'), spy);
    await checkEgress('http://example.com/', azure, spy);
    expect(seen).toEqual([]);
  });
});

describe('extractHost (pg_durable rule 2)', () => {
  it.each([
    ['https://a.b/c', 'a.b'],
    ['https://u:p@a.b:8443/c', 'a.b'],
    ['https://u@x@a.b/c', 'a.b'],
    ['https://a.b?x=@c.d', 'a.b'],
    ['https://a.b#@c.d', 'a.b'],
    ['https://[::1]:80/', '::1'],
    ['https://A.B', 'A.B'],
    ['https://', null],
    ['a.b/c', null],
  ])('%s → %s', (url, host) => {
    expect(extractHost(url)).toBe(host);
  });
});

describe('config parsing (PGFLARE_HTTP_POLICY, PGFLARE_HTTP_ALLOWED_HOSTS)', () => {
  it('parses pg_durable.http_policy', () => {
    expect(parseEgressMode('azure+test')).toBe('azure+test');
    expect(parseEgressMode(' ALL ')).toBe('all');
    expect(parseEgressMode('')).toBeUndefined();
    expect(parseEgressMode(null)).toBeUndefined();
    expect(parseEgressMode('open')).toBeUndefined();
  });

  it('parses pgflare.http_allowed_hosts', () => {
    expect(parseAllowedHosts(' API.Example.com, ,*.corp.example,.svc.example,')).toEqual([
      'api.example.com',
      '.corp.example',
      '.svc.example',
    ]);
    expect(parseAllowedHosts(null)).toEqual([]);
  });
});
