import { describe, expect, it } from 'vitest';
import type { HttpConfig, HttpMultipartConfig } from '../../../graph/schema.ts';
import { parseNodeConfig } from '../../../graph/schema.ts';
import {
  buildEnvelope,
  buildMultipartBody,
  collectResponseHeaders,
  decodeResponseBody,
  errorPreview,
  executeHttpStep,
  isDeclaredTextual,
  privilegeError,
  type HttpStepInput,
} from './index.ts';
import { encodeBase64 } from './base64.ts';

interface Captured {
  url: string;
  init: RequestInit;
  headers: Headers;
  body: Uint8Array | null;
}

/** A fetch double that records the request and answers with `respond()`. */
function fakeFetch(respond: (c: Captured) => Response | Promise<Response> = () => new Response('ok')) {
  const calls: Captured[] = [];
  const f = (async (url: string, init: RequestInit) => {
    const c: Captured = {
      url,
      init,
      headers: new Headers(init.headers),
      body: init.body === undefined || init.body === null ? null : (init.body as Uint8Array),
    };
    calls.push(c);
    return respond(c);
  }) as unknown as typeof fetch;
  return { fetch: f, calls };
}

const utf8 = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

function httpInput(config: Partial<HttpConfig>, over: Partial<HttpStepInput> = {}): HttpStepInput {
  return {
    nodeType: 'HTTP',
    nodeId: 'a1b2c3d4',
    config: { url: 'https://api.example/x', method: 'POST', body: null, headers: null, timeout_seconds: 30, ...config },
    named: {},
    vars: {},
    instanceId: 'deadbeef',
    label: null,
    idempotencyKey: 'deadbeef:a1b2c3d4:deadbeef::1',
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
    config: { url: 'https://api.example/upload', method: 'POST', parts: [], headers: null, timeout_seconds: 30, ...config },
  } as HttpStepInput;
}

const rows = (obj: Record<string, unknown>) => JSON.stringify({ rows: [obj], row_count: 1 });

describe('substitution (as pg_durable: body, url, string header values, raw mode)', () => {
  it('substitutes body, url and string header values; skips non-string headers', async () => {
    const { fetch, calls } = fakeFetch();
    const out = await executeHttpStep(
      httpInput(
        {
          url: 'https://api.example/{path}/$r.id',
          body: 'who=$r.name&label={sys_label}',
          headers: { 'X-Id': '$r', 'X-Num': 5 as unknown as string, 'X-Inst': '{sys_instance_id}' },
        },
        { fetch, named: { r: rows({ id: 42, name: 'Ada' }) }, vars: { path: 'v1' }, label: 'lbl' },
      ),
    );
    expect(out.ok).toBe(true);
    expect(calls[0].url).toBe('https://api.example/v1/42');
    expect(utf8(calls[0].body)).toBe('who=Ada&label=lbl');
    expect(calls[0].headers.get('x-id')).toBe('42');
    expect(calls[0].headers.get('x-inst')).toBe('deadbeef');
    expect(calls[0].headers.has('x-num')).toBe(false);
  });

  it('keeps pg_durable\'s quirk: a {v} nested in another brace pair is not substituted', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(httpInput({ body: '{"text": "{msg}"}' }, { fetch, vars: { msg: 'hi' } }));
    expect(utf8(calls[0].body)).toBe('{"text": "{msg}"}');
  });

  it('reports the first failure in order body, url, headers (sorted)', async () => {
    const { fetch, calls } = fakeFetch();
    const run = (cfg: Partial<HttpConfig>) => executeHttpStep(httpInput(cfg, { fetch, named: { e: '{"rows":[],"row_count":0}' } }));
    expect(await run({ body: '$e', url: 'https://x/$e.a' })).toEqual({ ok: false, error: '$e has no rows — query returned zero results' });
    expect(await run({ url: 'https://x/$e.a', headers: { A: '$e' } })).toEqual({
      ok: false,
      error: '$e has no rows — query returned zero results',
    });
    const named = { o: '{"x":1}' };
    const r = await executeHttpStep(httpInput({ headers: { b: '$o.bb', a: '$o.aa' } }, { fetch, named }));
    expect(r).toEqual({ ok: false, error: "$o.aa: result has no field 'aa' (available: x)" });
    expect(calls).toHaveLength(0);
  });

  it('substitutes multipart name and filename, and data_b64 only as a whole-value reference', async () => {
    const { fetch, calls } = fakeFetch();
    const out = await executeHttpStep(
      multipartInput(
        {
          parts: [
            { name: 'f_{n}', filename: '$doc.fname', data_b64: '  $doc.data ', content_type: 'text/plain' },
            { name: 'v', data_b64: '{b64}' },
          ],
        },
        { fetch, named: { doc: rows({ fname: 'a.txt', data: 'aGVsbG8=' }) }, vars: { n: '1', b64: 'AAEC' } },
      ),
    );
    expect(out.ok).toBe(true);
    const text = new TextDecoder('latin1').decode(calls[0].body!);
    expect(text).toContain('Content-Disposition: form-data; name="f_1"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n');
    expect(text).toContain('Content-Disposition: form-data; name="v"\r\n\r\n\x00\x01\x02\r\n');
  });

  it('rejects data_b64 that mixes a reference with other text (exact text)', async () => {
    const out = await executeHttpStep(multipartInput({ parts: [{ name: 'doc', data_b64: 'QUJD$x' }] }, { named: { x: 'y' } }));
    expect(out).toEqual({
      ok: false,
      error:
        "HTTP_MULTIPART node a1b2c3d4: data_b64 for part 'doc' mixes a variable reference with other text. Only a whole-value reference is supported (e.g. data_b64 => '$result' or '{myvar}'), because splicing into base64 would corrupt the payload.",
    });
    const brace = await executeHttpStep(multipartInput({ parts: [{ name: 'p', data_b64: '{a}{b}' }] }));
    expect(brace.ok === false && brace.error).toMatch(/^HTTP_MULTIPART node a1b2c3d4: data_b64 for part 'p' mixes/);
  });

  it('never substitutes content_type', async () => {
    const out = await executeHttpStep(
      multipartInput({ parts: [{ name: 'p', data_b64: '', content_type: '{ct}' }] }, { vars: { ct: 'text/plain' } }),
    );
    expect(out.ok === false && out.error).toMatch(/^Invalid content_type for part 'p': /);
  });
});

describe('privilege and policy (pg_durable re-checks EXECUTE on df.http at every request)', () => {
  it('re-checks EXECUTE with the exact texts, after substitution', async () => {
    const { fetch, calls } = fakeFetch();
    expect(await executeHttpStep(httpInput({}, { fetch, canUseHttp: false, ownerRole: 'bob' }))).toEqual({
      ok: false,
      error:
        "Blocked: role 'bob' does not have EXECUTE privilege on df.http(). Grant EXECUTE ON FUNCTION df.http(text,text,text,jsonb,integer) TO bob to allow HTTP requests.",
    });
    expect(await executeHttpStep(multipartInput({}, { fetch, canUseHttp: false, ownerRole: '"Weird Role"' }))).toEqual({
      ok: false,
      error: privilegeError('"Weird Role"', true),
    });
    expect(privilegeError('r', true)).toBe(
      "Blocked: role 'r' does not have EXECUTE privilege on df.http_multipart(). Grant EXECUTE ON FUNCTION df.http_multipart(text,text,jsonb,jsonb,integer) TO r to allow multipart HTTP requests.",
    );
    // Substitution runs first.
    expect(await executeHttpStep(httpInput({ url: '$nope.x' }, { canUseHttp: false, named: { nope: '[]' } }))).toEqual({
      ok: false,
      error: '$nope.x: result is neither a row set nor a JSON object',
    });
    expect(calls).toHaveLength(0);
  });

  it('applies the egress policy to the substituted URL', async () => {
    const { fetch, calls } = fakeFetch();
    const disabled = await executeHttpStep(httpInput({}, { fetch, policy: { mode: 'disabled', allowedHosts: [] } }));
    expect(disabled).toEqual({
      ok: false,
      error: "Blocked: outbound HTTP requests are disabled. Rebuild with the 'http-allow-azure-domains' Cargo feature to enable them.",
    });
    const ip = await executeHttpStep(httpInput({ url: 'http://{h}/' }, { fetch, vars: { h: '0x7f000001' }, policy: { mode: 'azure', allowedHosts: [] } }));
    expect(ip.ok === false && ip.error).toMatch(/bare IP/);
    const scheme = await executeHttpStep(httpInput({ url: 'file:///etc/passwd' }, { fetch }));
    expect(scheme.ok === false && scheme.error).toMatch(/unsupported URL scheme 'file'/);
    expect(calls).toHaveLength(0);
  });

  it('uses the DNS port: restricted addresses are blocked, resolver failures are connection failures', async () => {
    const { fetch, calls } = fakeFetch();
    const policy = { mode: 'allowlist' as const, allowedHosts: ['corp.example'] };
    const blocked = await executeHttpStep(
      httpInput({ url: 'https://db.corp.example/' }, { fetch, policy, resolve: async () => ['10.0.0.8'] }),
    );
    expect(blocked).toEqual({
      ok: false,
      error:
        "Blocked: the resolved IP address for 'db.corp.example' is in a restricted range. df.http() cannot access private or internal network addresses.",
    });
    const nx = await executeHttpStep(
      httpInput({ url: 'https://nx.corp.example/' }, { fetch, policy, resolve: async () => Promise.reject(new Error('getaddrinfo ENOTFOUND nx.corp.example')) }),
    );
    expect(nx).toEqual({ ok: false, error: 'HTTP connection failed: https://nx.corp.example/ - getaddrinfo ENOTFOUND nx.corp.example' });
    expect(calls).toHaveLength(0);
    const ok = await executeHttpStep(httpInput({ url: 'https://api.corp.example/' }, { fetch, policy, resolve: async () => ['93.184.215.9'] }));
    expect(ok.ok).toBe(true);
  });
});

describe('request (as pg_durable sends it: no redirects, its User-Agent, string headers only)', () => {
  it('sends manual redirects, a timeout signal, default User-Agent and the Idempotency-Key, no default Content-Type', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(httpInput({ method: 'PUT', body: 'plain' }, { fetch }));
    const c = calls[0];
    expect(c.init.method).toBe('PUT');
    expect(c.init.redirect).toBe('manual');
    expect(c.init.signal).toBeInstanceOf(AbortSignal);
    expect(c.headers.get('user-agent')).toBe('pg_durable/0.2.6');
    expect(c.headers.get('idempotency-key')).toBe('deadbeef:a1b2c3d4:deadbeef::1');
    expect(c.headers.has('content-type')).toBe(false);
    expect(c.body).toBeInstanceOf(Uint8Array);
    expect(utf8(c.body)).toBe('plain');
  });

  it('lets the workflow override User-Agent and Idempotency-Key (case-insensitive)', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(httpInput({ headers: { 'user-AGENT': 'mine/1', 'IDEMPOTENCY-KEY': 'k1', 'Content-Type': 'application/json' } }, { fetch }));
    expect(calls[0].headers.get('user-agent')).toBe('mine/1');
    expect(calls[0].headers.get('idempotency-key')).toBe('k1');
    expect(calls[0].headers.get('content-type')).toBe('application/json');
  });

  it('keeps the same Idempotency-Key for the same step across executions', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(httpInput({}, { fetch }));
    await executeHttpStep(httpInput({}, { fetch }));
    expect(calls[0].headers.get('idempotency-key')).toBe(calls[1].headers.get('idempotency-key'));
  });

  it('sends a body with any method that allows one; GET with a non-empty body fails loudly', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(httpInput({ method: 'DELETE', body: 'x' }, { fetch }));
    expect(utf8(calls[0].body)).toBe('x');
    await executeHttpStep(httpInput({ method: 'GET', body: '' }, { fetch }));
    expect(calls[1].body).toBeNull();
    const r = await executeHttpStep(httpInput({ method: 'GET', body: 'q' }, { fetch }));
    expect(r.ok === false && r.error).toMatch(/^HTTP request failed: https:\/\/api\.example\/x - a GET request cannot carry a body/);
    expect(calls).toHaveLength(2);
  });

  it('rejects unsupported methods (exact case, as pg_durable)', async () => {
    expect(await executeHttpStep(httpInput({ method: 'get' }))).toEqual({ ok: false, error: 'Unsupported HTTP method: get' });
    expect(await executeHttpStep(httpInput({ method: 'HEAD' }))).toEqual({ ok: false, error: 'Unsupported HTTP method: HEAD' });
    expect(await executeHttpStep(multipartInput({ method: 'GET' }))).toEqual({ ok: false, error: 'Unsupported HTTP method for multipart: GET' });
  });

  it('sends non-ASCII header values as UTF-8 bytes and rejects invalid headers', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(httpInput({ headers: { 'X-Name': 'café' } }, { fetch }));
    expect(calls[0].headers.get('x-name')).toBe('caf\u00c3\u00a9');
    const bad = await executeHttpStep(httpInput({ headers: { 'X-Evil': 'a\r\nInjected: 1' } }, { fetch }));
    expect(bad).toEqual({ ok: false, error: "HTTP request failed: https://api.example/x - invalid header 'X-Evil'" });
    const badName = await executeHttpStep(httpInput({ headers: { 'Bad Name': 'v' } }, { fetch }));
    expect(badName.ok).toBe(false);
  });

  it('rejects a negative timeout', async () => {
    expect(await executeHttpStep(httpInput({ timeout_seconds: -1 }))).toEqual({
      ok: false,
      error: 'Invalid HTTP config: timeout_seconds must be a non-negative integer',
    });
  });
});

describe('multipart (as pg_durable builds it: parts from base64, the user Content-Type dropped)', () => {
  it('drops the user Content-Type and sets multipart/form-data with the boundary', async () => {
    const { fetch, calls } = fakeFetch();
    await executeHttpStep(
      multipartInput({ headers: { 'CONTENT-type': 'application/json', 'X-A': 'b' }, parts: [{ name: 'a', data_b64: 'YQ==' }] }, { fetch }),
    );
    const ct = calls[0].headers.get('content-type')!;
    const m = /^multipart\/form-data; boundary=([0-9a-f-]+)$/.exec(ct);
    expect(m).not.toBeNull();
    expect(calls[0].headers.get('x-a')).toBe('b');
    expect(utf8(calls[0].body)).toBe(`--${m![1]}\r\nContent-Disposition: form-data; name="a"\r\n\r\na\r\n--${m![1]}--\r\n`);
  });

  it('builds exact bytes, escaping quotes and line breaks in names and filenames', () => {
    const body = buildMultipartBody(
      [
        { name: 'file', filename: 'we"ird\r\n.bin', contentType: 'application/octet-stream', dataB64: encodeBase64(new Uint8Array([0, 255, 13, 10])) },
        { name: 'naïve', filename: null, contentType: null, dataB64: '' },
      ],
      'BOUND',
    );
    const expected = [
      '--BOUND\r\nContent-Disposition: form-data; name="file"; filename="we%22ird%0D%0A.bin"\r\nContent-Type: application/octet-stream\r\n\r\n',
      '\x00\xff\r\n\r\n',
      '--BOUND\r\nContent-Disposition: form-data; name="na\xc3\xafve"\r\n\r\n\r\n',
      '--BOUND--\r\n',
    ].join('');
    expect([...body]).toEqual([...expected].map((ch) => ch.charCodeAt(0)));
  });

  it('reports bad base64 and bad content types per part', async () => {
    const bad64 = await executeHttpStep(multipartInput({ parts: [{ name: 'a', data_b64: 'YQ==' }, { name: 'b', data_b64: 'Y!==' }] }));
    expect(bad64).toEqual({ ok: false, error: "Invalid base64 in part 'b': Invalid symbol 33, offset 1." });
    const badCt = await executeHttpStep(multipartInput({ parts: [{ name: 'c', data_b64: 'YQ==', content_type: 'not a mime' }] }));
    expect(badCt.ok === false && badCt.error).toMatch(/^Invalid content_type for part 'c': /);
  });

  it('reports missing name/data_b64 as an invalid multipart config (also via parseNodeConfig)', async () => {
    const r = await executeHttpStep(multipartInput({ parts: [{ data_b64: 'YQ==' } as never] }));
    expect(r.ok === false && r.error).toMatch(/^Invalid multipart HTTP config: /);
    expect(() =>
      parseNodeConfig({ node_type: 'HTTP_MULTIPART', query: JSON.stringify({ url: 'https://x', parts: [{ name: 'a' }] }) }),
    ).toThrow(/^Invalid multipart HTTP config: /);
  });
});

describe('response envelope (pg_durable\'s: status, body, encoding, headers, ok, duration_ms)', () => {
  it('has the exact key order and types', async () => {
    const { fetch } = fakeFetch(
      () => new Response('{"a":1}', { status: 201, headers: { 'Content-Type': 'application/json', 'X-Thing': 'v' } }),
    );
    const out = await executeHttpStep(httpInput({}, { fetch }));
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(Object.keys(JSON.parse(out.resultText))).toEqual(['status', 'body', 'encoding', 'headers', 'ok', 'duration_ms']);
    expect(out.resultText).toMatch(
      /^\{"status":201,"body":"\{\\"a\\":1\}","encoding":"text","headers":\{"content-type":"application\/json","x-thing":"v"\},"ok":true,"duration_ms":\d+\}$/,
    );
  });

  it('returns 3xx and 4xx as results with ok=false', async () => {
    for (const status of [302, 404, 418]) {
      const { fetch } = fakeFetch(() => new Response(status === 302 ? null : 'nope', { status, headers: { location: '/x' } }));
      const out = await executeHttpStep(httpInput({}, { fetch }));
      expect(out.ok).toBe(true);
      if (out.ok) expect(JSON.parse(out.resultText)).toMatchObject({ status, ok: false });
    }
  });

  it('builds the envelope by hand (integer-like header names keep their order)', () => {
    expect(buildEnvelope(200, { body: 'x', encoding: 'text' }, [['b', '1'], ['10', '2']], 12.9)).toBe(
      '{"status":200,"body":"x","encoding":"text","headers":{"b":"1","10":"2"},"ok":true,"duration_ms":12}',
    );
  });

  it('collects headers: lower-case, non-ASCII values skipped, last set-cookie wins', () => {
    const h = new Headers();
    h.append('X-B', 'two');
    h.append('X-A', 'one');
    h.append('X-Latin', 'caf\u00e9');
    h.append('Set-Cookie', 'a=1');
    h.append('Set-Cookie', 'b=2');
    expect(collectResponseHeaders(h)).toEqual([
      ['set-cookie', 'b=2'],
      ['x-a', 'one'],
      ['x-b', 'two'],
    ]);
  });
});

describe('body encoding', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it.each([
    ['text/plain', true],
    ['TEXT/HTML; charset=utf-8', true],
    ['application/json', true],
    ['application/vnd.api+json', true],
    ['image/svg+xml', true],
    ['application/x-yaml', true],
    ['application/graphql', true],
    ['text/html, application/octet-stream', true],
    ['application/octet-stream, text/html', false],
    ['application/octet-stream', false],
    ['image/png', false],
    ['application/jwt', false],
    ['', false],
    [null, false],
  ])('isDeclaredTextual(%j) = %s', (ct, expected) => {
    expect(isDeclaredTextual(ct)).toBe(expected);
  });

  it('decodes declared text with its charset (UTF-8 fallback for unknown labels)', () => {
    expect(decodeResponseBody(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), 'text/plain; charset=iso-8859-1')).toEqual({
      body: 'café',
      encoding: 'text',
    });
    expect(decodeResponseBody(new Uint8Array([0xff, 0xfe, 0x68, 0, 0x69, 0]), 'text/plain; charset="utf-16le"')).toEqual({
      body: 'hi',
      encoding: 'text',
    });
    expect(decodeResponseBody(enc('\ufeff{}'), 'application/json')).toEqual({ body: '{}', encoding: 'text' });
    expect(decodeResponseBody(new Uint8Array([0x61, 0xff]), 'text/plain; charset=bogus')).toEqual({ body: 'a\ufffd', encoding: 'text' });
  });

  it('decides undeclared bodies by their bytes', () => {
    expect(decodeResponseBody(enc('héllo'), 'application/octet-stream')).toEqual({ body: 'héllo', encoding: 'text' });
    expect(decodeResponseBody(enc('\ufeffbom kept'), null)).toEqual({ body: '\ufeffbom kept', encoding: 'text' });
    expect(decodeResponseBody(new Uint8Array([0x61, 0, 0x62]), null)).toEqual({ body: 'YQBi', encoding: 'base64' });
    expect(decodeResponseBody(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), 'image/png')).toEqual({ body: 'iVBORw==', encoding: 'base64' });
    expect(decodeResponseBody(new Uint8Array(0), null)).toEqual({ body: '', encoding: 'text' });
  });

  it('a base64 envelope body round-trips into a multipart part', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    const { fetch, calls } = fakeFetch((c) =>
      c.url.endsWith('/img') ? new Response(png, { headers: { 'content-type': 'image/png' } }) : new Response('ok'),
    );
    const got = await executeHttpStep(httpInput({ url: 'https://api.example/img', method: 'GET' }, { fetch }));
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    const up = await executeHttpStep(
      multipartInput({ parts: [{ name: 'f', filename: 'i.png', data_b64: '$img.body' }] }, { fetch, named: { img: got.resultText } }),
    );
    expect(up.ok).toBe(true);
    const body = calls[1].body!;
    const start = new TextDecoder('latin1').decode(body).indexOf('\r\n\r\n') + 4;
    expect([...body.subarray(start, start + png.length)]).toEqual([...png]);
  });
});

describe('failures (pg_durable\'s: a status of 500 or more fails the step, transport errors named)', () => {
  it('fails on 5xx with a body preview', async () => {
    const { fetch } = fakeFetch(() => new Response('boom', { status: 503 }));
    expect(await executeHttpStep(httpInput({ url: 'https://api.example/y', method: 'PATCH' }, { fetch }))).toEqual({
      ok: false,
      error: 'HTTP PATCH https://api.example/y returned 503: boom',
    });
    const mp = await executeHttpStep(multipartInput({ parts: [{ name: 'a', data_b64: '' }] }, { fetch }));
    expect(mp).toEqual({ ok: false, error: 'HTTP_MULTIPART POST https://api.example/upload returned 503: boom' });
  });

  it('truncates previews at 512 bytes on a character boundary', () => {
    expect(errorPreview({ body: 'x'.repeat(512), encoding: 'text' })).toBe('x'.repeat(512));
    expect(errorPreview({ body: 'x'.repeat(600), encoding: 'text' })).toBe(`${'x'.repeat(512)}... [truncated, 600 bytes total]`);
    // 'é' is 2 bytes: 511 x + é would straddle byte 512.
    expect(errorPreview({ body: `${'x'.repeat(511)}é${'y'.repeat(10)}`, encoding: 'text' })).toBe(
      `${'x'.repeat(511)}... [truncated, 523 bytes total]`,
    );
    expect(errorPreview({ body: 'A'.repeat(700), encoding: 'base64' })).toBe(`${'A'.repeat(512)}... [truncated, 700 base64 characters total]`);
  });

  it('maps transport errors', async () => {
    const timeout = fakeFetch(() => {
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    });
    expect(await executeHttpStep(httpInput({ timeout_seconds: 7 }, { fetch: timeout.fetch }))).toEqual({
      ok: false,
      error: 'HTTP timeout after 7s: https://api.example/x',
    });
    const refused = fakeFetch(() => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    });
    expect(await executeHttpStep(httpInput({}, { fetch: refused.fetch }))).toEqual({
      ok: false,
      error: 'HTTP connection failed: https://api.example/x - connect ECONNREFUSED 127.0.0.1:9',
    });
    const reset = fakeFetch(() => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
    });
    expect(await executeHttpStep(httpInput({}, { fetch: reset.fetch }))).toEqual({
      ok: false,
      error: 'HTTP request failed: https://api.example/x - other side closed',
    });
    const plain = fakeFetch(() => {
      throw new Error('Network connection lost.');
    });
    expect(await executeHttpStep(httpInput({}, { fetch: plain.fetch }))).toEqual({
      ok: false,
      error: 'HTTP request failed: https://api.example/x - Network connection lost.',
    });
  });

  it('caps the response size (declared length and streamed bodies)', async () => {
    const declared = fakeFetch(() => new Response('x'.repeat(100), { headers: { 'content-length': '100' } }));
    expect(await executeHttpStep(httpInput({}, { fetch: declared.fetch, maxResponseBytes: 99 }))).toEqual({
      ok: false,
      error: 'HTTP request failed: https://api.example/x - response body exceeds the limit of 99 bytes',
    });
    let pulled = 0;
    const streamed = fakeFetch(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              pulled++;
              controller.enqueue(new Uint8Array(64));
            },
          }),
        ),
    );
    const r = await executeHttpStep(httpInput({}, { fetch: streamed.fetch, maxResponseBytes: 1000 }));
    expect(r).toEqual({ ok: false, error: 'HTTP request failed: https://api.example/x - response body exceeds the limit of 1000 bytes' });
    expect(pulled).toBeLessThan(40); // stopped reading an endless body
    const big5xx = fakeFetch(() => new Response('x'.repeat(100), { status: 500 }));
    expect(await executeHttpStep(httpInput({ method: 'GET' }, { fetch: big5xx.fetch, maxResponseBytes: 10 }))).toEqual({
      ok: false,
      error: 'HTTP GET https://api.example/x returned 500: [response body exceeds the limit of 10 bytes]',
    });
    const exact = fakeFetch(() => new Response('x'.repeat(100)));
    expect((await executeHttpStep(httpInput({}, { fetch: exact.fetch, maxResponseBytes: 100 }))).ok).toBe(true);
  });
});
