/**
 * The HTTP step executor against a real node:http server on 127.0.0.1 (policy `all`, since the
 * server is on loopback), plus the SSRF path with the real Node resolver.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lookup } from 'node:dns/promises';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeHttpStep, type HttpStepInput } from '../../src/engine/executors/http/index.ts';
import type { HttpConfig, HttpMultipartConfig } from '../../src/graph/schema.ts';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

const received: Received[] = [];
let redirectTargetHits = 0;
let server: Server;
let base: string;

function handler(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/hang') return; // never answers
    received.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body });
    switch (path) {
      case '/echo':
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('X-Echo', 'yes');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') }));
        return;
      case '/missing':
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('no such thing');
        return;
      case '/boom':
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('E'.repeat(600));
        return;
      case '/boom-short':
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end('bad gateway');
        return;
      case '/redirect':
        res.writeHead(302, { Location: `${base}/target` });
        res.end();
        return;
      case '/target':
        redirectTargetHits++;
        res.end('followed');
        return;
      case '/binary':
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]));
        return;
      case '/big-declared':
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '5000' });
        res.end('x'.repeat(5000));
        return;
      case '/big-chunked':
        res.writeHead(200, { 'Content-Type': 'text/plain' }); // no Content-Length: chunked
        for (let i = 0; i < 50; i++) res.write('y'.repeat(100));
        res.end();
        return;
      case '/multi-header':
        res.setHeader('Set-Cookie', ['a=1', 'b=2']);
        res.setHeader('X-Upper', 'V');
        res.end('');
        return;
      default:
        res.end('ok');
    }
  });
}

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function httpInput(config: Partial<HttpConfig>, over: Partial<HttpStepInput> = {}): HttpStepInput {
  return {
    nodeType: 'HTTP',
    nodeId: '0a0b0c0d',
    config: { url: `${base}/echo`, method: 'GET', body: null, headers: null, timeout_seconds: 10, ...config },
    named: {},
    vars: {},
    instanceId: '1a2b3c4d',
    label: null,
    idempotencyKey: '1a2b3c4d:0a0b0c0d:1a2b3c4d::1',
    policy: { mode: 'all', allowedHosts: [] },
    canUseHttp: true,
    ownerRole: 'alice',
    ...over,
  } as HttpStepInput;
}

function multipartInput(config: Partial<HttpMultipartConfig>, over: Partial<HttpStepInput> = {}): HttpStepInput {
  return {
    ...httpInput({}, over),
    nodeType: 'HTTP_MULTIPART',
    config: { url: `${base}/upload`, method: 'POST', parts: [], headers: null, timeout_seconds: 10, ...config },
  } as HttpStepInput;
}

async function ok(input: HttpStepInput) {
  const out = await executeHttpStep(input);
  if (!out.ok) throw new Error(`step failed: ${out.error}`);
  return { text: out.resultText, env: JSON.parse(out.resultText) };
}

describe('HTTP step against a local server', () => {
  it.each(['GET', 'POST', 'PUT', 'DELETE', 'PATCH'])('%s round trip', async (method) => {
    const body = method === 'GET' ? null : `payload for ${method}`;
    const { text, env } = await ok(httpInput({ method, body, url: `${base}/echo?m=${method}` }));
    expect(Object.keys(env)).toEqual(['status', 'body', 'encoding', 'headers', 'ok', 'duration_ms']);
    expect(env).toMatchObject({ status: 200, encoding: 'text', ok: true });
    expect(Number.isInteger(env.duration_ms)).toBe(true);
    expect(env.headers['content-type']).toBe('application/json');
    expect(env.headers['x-echo']).toBe('yes');
    const echoed = JSON.parse(env.body);
    expect(echoed.method).toBe(method);
    expect(echoed.url).toBe(`/echo?m=${method}`);
    expect(echoed.body).toBe(body ?? '');
    expect(echoed.headers['user-agent']).toBe('pg_durable/0.2.6');
    expect(echoed.headers['content-type']).toBeUndefined(); // no default Content-Type
    expect(text.startsWith('{"status":200,"body":')).toBe(true);
  });

  it('sends string headers (substituted), skips others, and echoes them', async () => {
    const { env } = await ok(
      httpInput(
        { headers: { 'X-Trace': 'run-{sys_instance_id}', 'X-Count': 3 as unknown as string, 'User-Agent': 'custom/2', 'Content-Type': 'text/csv' }, method: 'POST', body: 'a,b' },
        {},
      ),
    );
    const h = JSON.parse(env.body).headers;
    expect(h['x-trace']).toBe('run-1a2b3c4d');
    expect(h['x-count']).toBeUndefined();
    expect(h['user-agent']).toBe('custom/2');
    expect(h['content-type']).toBe('text/csv');
  });

  it('returns 404 as a result', async () => {
    const { env } = await ok(httpInput({ url: `${base}/missing` }));
    expect(env).toMatchObject({ status: 404, body: 'no such thing', encoding: 'text', ok: false });
  });

  it('fails on 500 with a truncated preview, and on 502 with the whole body', async () => {
    expect(await executeHttpStep(httpInput({ url: `${base}/boom`, method: 'POST', body: 'x' }))).toEqual({
      ok: false,
      error: `HTTP POST ${base}/boom returned 500: ${'E'.repeat(512)}... [truncated, 600 bytes total]`,
    });
    expect(await executeHttpStep(httpInput({ url: `${base}/boom-short` }))).toEqual({
      ok: false,
      error: `HTTP GET ${base}/boom-short returned 502: bad gateway`,
    });
  });

  it('does not follow a 302', async () => {
    const before = redirectTargetHits;
    const { env } = await ok(httpInput({ url: `${base}/redirect` }));
    expect(env).toMatchObject({ status: 302, ok: false, body: '' });
    expect(env.headers.location).toBe(`${base}/target`);
    expect(redirectTargetHits).toBe(before);
  });

  it('times out a server that never answers', async () => {
    const started = Date.now();
    expect(await executeHttpStep(httpInput({ url: `${base}/hang`, timeout_seconds: 1 }))).toEqual({
      ok: false,
      error: `HTTP timeout after 1s: ${base}/hang`,
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reports a refused connection', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const out = await executeHttpStep(httpInput({ url: `http://127.0.0.1:${port}/x` }));
    expect(out).toEqual({ ok: false, error: `HTTP connection failed: http://127.0.0.1:${port}/x - connect ECONNREFUSED 127.0.0.1:${port}` });
  });

  it('sends the same Idempotency-Key on every execution of a step, and the user may override it', async () => {
    received.length = 0;
    await ok(httpInput({ url: `${base}/idem`, method: 'POST', body: '1' }));
    await ok(httpInput({ url: `${base}/idem`, method: 'POST', body: '1' }));
    await ok(httpInput({ url: `${base}/idem` }, { idempotencyKey: '1a2b3c4d:0a0b0c0d:1a2b3c4d::2' }));
    await ok(httpInput({ url: `${base}/idem`, headers: { 'Idempotency-Key': 'mine' } }));
    const keys = received.map((r) => r.headers['idempotency-key']);
    expect(keys).toEqual(['1a2b3c4d:0a0b0c0d:1a2b3c4d::1', '1a2b3c4d:0a0b0c0d:1a2b3c4d::1', '1a2b3c4d:0a0b0c0d:1a2b3c4d::2', 'mine']);
    // Exactly one Idempotency-Key header line each time.
    for (const r of received) {
      expect(r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i].toLowerCase() === 'idempotency-key')).toHaveLength(1);
    }
  });

  it('returns binary bodies as base64', async () => {
    const { env } = await ok(httpInput({ url: `${base}/binary` }));
    expect(env).toMatchObject({ status: 200, encoding: 'base64', body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]).toString('base64') });
  });

  it('collects response headers lower-case, last set-cookie wins', async () => {
    const { env } = await ok(httpInput({ url: `${base}/multi-header` }));
    expect(env.headers['x-upper']).toBe('V');
    expect(env.headers['set-cookie']).toBe('b=2');
  });

  it('caps the response size', async () => {
    for (const path of ['/big-declared', '/big-chunked']) {
      expect(await executeHttpStep(httpInput({ url: `${base}${path}` }, { maxResponseBytes: 1000 }))).toEqual({
        ok: false,
        error: `HTTP request failed: ${base}${path} - response body exceeds the limit of 1000 bytes`,
      });
    }
    const { env } = await ok(httpInput({ url: `${base}/big-chunked` }, { maxResponseBytes: 5000 }));
    expect(env.body).toBe('y'.repeat(5000));
  });
});

/** Minimal RFC 7578 parser, to check the exact bytes the server got. */
function parseMultipart(body: Buffer, boundary: string) {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Array<{ headers: Record<string, string>; data: Buffer }> = [];
  let pos = body.indexOf(delim);
  expect(pos).toBe(0);
  for (;;) {
    pos += delim.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    expect(body.subarray(pos, pos + 2).toString()).toBe('\r\n');
    pos += 2;
    const headEnd = body.indexOf('\r\n\r\n', pos);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos, headEnd).toString('utf8').split('\r\n')) {
      const c = line.indexOf(':');
      headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
    }
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4);
    parts.push({ headers, data: body.subarray(headEnd + 4, next) });
    pos = next + 2;
  }
  return parts;
}

describe('HTTP_MULTIPART step against a local server', () => {
  it('uploads parts the server can parse: names, filenames, content types, exact bytes', async () => {
    received.length = 0;
    const binary = Buffer.from([0, 1, 2, 253, 254, 255, 13, 10, 45, 45]);
    const pgWrapped = Buffer.alloc(300, 7)
      .toString('base64')
      .replace(/(.{76})/g, '$1\n');
    const { env } = await ok(
      multipartInput(
        {
          headers: { 'Content-Type': 'application/json', 'X-Upload': '{sys_instance_id}' },
          parts: [
            { name: 'meta', data_b64: Buffer.from('{"k":"v"}').toString('base64'), content_type: 'application/json' },
            { name: 'file', filename: 'data.bin', data_b64: binary.toString('base64'), content_type: 'application/octet-stream' },
            { name: 'wrapped', filename: 'seven.bin', data_b64: pgWrapped },
            { name: 'from_{which}', filename: '$doc.fname', data_b64: '$doc.b64' },
          ],
        },
        {
          vars: { which: 'result' },
          named: { doc: JSON.stringify({ rows: [{ fname: 'r.txt', b64: Buffer.from('résumé').toString('base64') }], row_count: 1 }) },
        },
      ),
    );
    expect(env.status).toBe(200);
    const r = received[0];
    expect(r.method).toBe('POST');
    expect(r.headers['x-upload']).toBe('1a2b3c4d');
    expect(r.headers['idempotency-key']).toBe('1a2b3c4d:0a0b0c0d:1a2b3c4d::1');
    const m = /^multipart\/form-data; boundary=(.+)$/.exec(r.headers['content-type']!);
    expect(m).not.toBeNull();
    expect(Number(r.headers['content-length'])).toBe(r.body.length);

    const parts = parseMultipart(r.body, m![1]);
    expect(parts.map((p) => p.headers['content-disposition'])).toEqual([
      'form-data; name="meta"',
      'form-data; name="file"; filename="data.bin"',
      'form-data; name="wrapped"; filename="seven.bin"',
      'form-data; name="from_result"; filename="r.txt"',
    ]);
    expect(parts.map((p) => p.headers['content-type'])).toEqual(['application/json', 'application/octet-stream', undefined, undefined]);
    expect(parts[0].data.toString()).toBe('{"k":"v"}');
    expect(parts[1].data.equals(binary)).toBe(true);
    expect(parts[2].data.equals(Buffer.alloc(300, 7))).toBe(true);
    expect(parts[3].data.toString('utf8')).toBe('résumé');

    // An independent parser (undici's) agrees.
    const form = await new Response(new Uint8Array(r.body), { headers: { 'content-type': r.headers['content-type']! } }).formData();
    expect(form.get('meta')).toBe('{"k":"v"}');
    const file = form.get('file') as File;
    expect(file.name).toBe('data.bin');
    expect(Buffer.from(await file.arrayBuffer()).equals(binary)).toBe(true);
    expect(((form.get('from_result') as File).name)).toBe('r.txt');
  });

  it('fails before sending when a part is malformed', async () => {
    received.length = 0;
    expect(await executeHttpStep(multipartInput({ parts: [{ name: 'a', data_b64: 'not base64!' }] }))).toEqual({
      ok: false,
      // Offsets count in the input after whitespace removal ("notbase64!").
      error: "Invalid base64 in part 'a': Invalid symbol 33, offset 9.",
    });
    expect(received).toHaveLength(0);
  });

  it('fails on 5xx with the HTTP_MULTIPART prefix', async () => {
    expect(await executeHttpStep(multipartInput({ url: `${base}/boom-short`, method: 'PUT', parts: [{ name: 'a', data_b64: 'YQ==' }] }))).toEqual({
      ok: false,
      error: `HTTP_MULTIPART PUT ${base}/boom-short returned 502: bad gateway`,
    });
  });
});

describe('SSRF with the Node resolver', () => {
  const resolve = async (host: string) => (await lookup(host, { all: true })).map((a) => a.address);

  it('blocks an allow-listed name that resolves to loopback, before any request', async () => {
    received.length = 0;
    const port = (server.address() as AddressInfo).port;
    const out = await executeHttpStep(
      httpInput({ url: `http://localhost:${port}/echo` }, { policy: { mode: 'allowlist', allowedHosts: ['localhost'] }, resolve }),
    );
    expect(out).toEqual({
      ok: false,
      error: "Blocked: the resolved IP address for 'localhost' is in a restricted range. df.http() cannot access private or internal network addresses.",
    });
    expect(received).toHaveLength(0);
  });

  it('blocks the loopback server by IP in every non-all mode', async () => {
    for (const mode of ['azure', 'azure+test', 'allowlist'] as const) {
      const out = await executeHttpStep(httpInput({}, { policy: { mode, allowedHosts: ['127.0.0.1'] }, resolve }));
      expect(out.ok === false && out.error).toMatch(/^Blocked: requests to bare IP addresses are not permitted\./);
    }
  });
});
