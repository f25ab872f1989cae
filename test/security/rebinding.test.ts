/**
 * DNS rebinding (issue 7 item 4): on Node the address check runs again inside the connection's own
 * lookup (src/runtime/node/guarded-fetch.ts), so a name that resolves to a public address for the egress
 * check and to 127.0.0.1 when the request connects is refused before a socket is opened. The server
 * below counts requests, so "refused" means it saw nothing. The rest checks that the Node transport
 * behaves like fetch for what the executor uses.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGuardedFetch } from '../../src/runtime/node/guarded-fetch.ts';
import { executeHttpStep, type HttpStepInput } from '../../src/engine/executors/http/index.ts';
import { restrictedError, type Resolver } from '../../src/engine/executors/http/egress.ts';

let server: Server;
let port = 0;
let hits: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
let onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (onRequest) return onRequest(req, res);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, method: req.method }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  hits = [];
  onRequest = null;
});

const PUBLIC: Resolver = async () => ['93.184.215.14'];
const LOOPBACK: Resolver = async () => ['127.0.0.1'];
const allowAll = () => null;

function step(url: string, over: Partial<HttpStepInput> = {}): HttpStepInput {
  return {
    nodeType: 'HTTP',
    nodeId: 'n1',
    config: { url, method: 'GET', body: null, headers: {}, timeout_seconds: 5 } as never,
    named: {},
    vars: {},
    instanceId: 'deadbeef',
    label: null,
    idempotencyKey: 'deadbeef:n1:1',
    policy: { mode: 'allowlist', allowedHosts: ['rebind.test', 'ok.test'] },
    canUseHttp: true,
    ownerRole: 'o',
    ...over,
  } as HttpStepInput;
}

describe('the address actually dialled is checked (Node)', () => {
  it('a name that rebinds from a public address to 127.0.0.1 between the check and the connect is refused, nothing sent', async () => {
    const out = await executeHttpStep(
      step(`http://rebind.test:${port}/secret`, { resolve: PUBLIC, guardedFetch: (check) => createGuardedFetch(check, LOOPBACK) }),
    );
    expect(out).toEqual({ ok: false, error: restrictedError('rebind.test') });
    expect(hits).toEqual([]);
  });

  it.each([
    ['a mix of public and loopback', ['93.184.215.14', '127.0.0.1']],
    ['cloud metadata', ['169.254.169.254']],
    ['IPv4-mapped loopback', ['::ffff:127.0.0.1']],
    ['no address at all', []],
  ])('refuses %s at connect time', async (_what, addresses) => {
    const out = await executeHttpStep(
      step(`http://rebind.test:${port}/`, { resolve: PUBLIC, guardedFetch: (check) => createGuardedFetch(check, async () => addresses) }),
    );
    expect(out).toEqual({ ok: false, error: restrictedError('rebind.test') });
    expect(hits).toEqual([]);
  });

  it('without the guard (the global fetch), the same rebinding would have reached the server: the control', async () => {
    // The check is what stops it: the same transport with a check that allows everything connects.
    const out = await executeHttpStep(step(`http://ok.test:${port}/x`, { resolve: PUBLIC, guardedFetch: () => createGuardedFetch(allowAll, LOOPBACK) }));
    expect(out.ok).toBe(true);
    expect(hits).toHaveLength(1);
    expect(hits[0]!.headers['idempotency-key']).toBe('deadbeef:n1:1');
    expect(JSON.parse((out as { resultText: string }).resultText)).toMatchObject({ status: 200, body: '{"path":"/x","method":"GET"}', ok: true });
  });

  it('mode all uses the plain fetch and no guard (it checks nothing by design)', async () => {
    let built = 0;
    const out = await executeHttpStep(
      step(`http://127.0.0.1:${port}/all`, {
        policy: { mode: 'all', allowedHosts: [] },
        guardedFetch: (check) => {
          built++;
          return createGuardedFetch(check);
        },
      }),
    );
    expect(out.ok).toBe(true);
    expect(built).toBe(0);
  });
});

describe('the guarded transport behaves like fetch for the executor', () => {
  const f = createGuardedFetch(allowAll, LOOPBACK);
  const base = () => `http://ok.test:${port}`;

  it('sends method, headers and a byte body with its length', async () => {
    const res = await f(`${base()}/p?q=1`, { method: 'POST', headers: { 'x-a': 'b' }, body: new TextEncoder().encode('héllo') });
    expect(res.status).toBe(200);
    await res.text();
    expect(hits[0]).toMatchObject({ method: 'POST', url: '/p?q=1', body: 'héllo' });
    expect(hits[0]!.headers['content-length']).toBe('6');
    expect(hits[0]!.headers['x-a']).toBe('b');
    expect(hits[0]!.headers.host).toBe(`ok.test:${port}`);
  });

  it.each([
    ['gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ] as const)('decompresses %s', async (coding, compress) => {
    onRequest = (_req, res) => {
      res.writeHead(200, { 'content-encoding': coding, 'content-type': 'text/plain' });
      res.end(compress(Buffer.from('x'.repeat(1000))));
    };
    const res = await f(`${base()}/z`);
    expect(await res.text()).toBe('x'.repeat(1000));
  });

  it('returns a redirect as it is (never follows it)', async () => {
    onRequest = (_req, res) => {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    };
    const res = await f(`${base()}/r`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://169.254.169.254/latest/meta-data/');
    expect(hits).toHaveLength(1);
  });

  it('keeps repeated set-cookie headers and answers 204 with no body', async () => {
    onRequest = (_req, res) => {
      res.writeHead(204, [['set-cookie', 'a=1'], ['set-cookie', 'b=2']] as never);
      res.end();
    };
    const res = await f(`${base()}/c`);
    expect(res.status).toBe(204);
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(res.body).toBeNull();
  });

  it('aborts with the signal (the executor turns that into its timeout error)', async () => {
    const ac = new AbortController();
    onRequest = () => ac.abort(); // never answers
    await expect(f(`${base()}/hang`, { signal: ac.signal })).rejects.toThrow();
    expect(hits).toHaveLength(1);
  });

  it('a decompression bomb stops at the response cap', async () => {
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024)); // 8 MiB of zeros, about 8 KiB on the wire
    onRequest = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'application/octet-stream', 'content-length': String(bomb.length) });
      res.end(bomb);
    };
    const out = await executeHttpStep(
      step(`http://ok.test:${port}/bomb`, { resolve: PUBLIC, maxResponseBytes: 1024 * 1024, guardedFetch: () => createGuardedFetch(allowAll, LOOPBACK) }),
    );
    expect(out).toEqual({ ok: false, error: `HTTP request failed: http://ok.test:${port}/bomb - response body exceeds the limit of 1048576 bytes` });
  });

  it('a resolver failure is a connection failure, not a block', async () => {
    const nx = createGuardedFetch(allowAll, async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nx.test'), { code: 'ENOTFOUND' });
    });
    const out = await executeHttpStep(step(`http://ok.test:${port}/`, { resolve: PUBLIC, guardedFetch: () => nx }));
    expect(out).toEqual({ ok: false, error: `HTTP connection failed: http://ok.test:${port}/ - getaddrinfo ENOTFOUND nx.test` });
  });
});
