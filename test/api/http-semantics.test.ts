/**
 * HTTP semantics of the API: 405 with Allow, X-Request-Id (echoed, generated, on every log line of the
 * request), CORS when configured, and GET /v1/instances/{instance_id}?wait= (long-poll until finished,
 * capped).
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import type { Logger } from '../../src/log.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const TOKEN = 'static-token-for-http-semantics-01';
const auth = { Authorization: `Bearer ${TOKEN}` };
const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
const capture: Logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((l) => [l, (msg: string, fields?: Record<string, unknown>) => void lines.push({ msg, fields })])) as never;
let app: ReturnType<typeof createApp>;
let call: ReturnType<typeof client>;

beforeAll(() => {
  app = createApp({ db: t.db, log: capture, staticTokens: [{ token: TOKEN, role: inject('pg').owner }], maxWaitSeconds: 2 });
  call = client(app);
});

const start = async (workflow: string) => {
  const r = await call('POST', '/v1/instances', { token: TOKEN, body: { workflow } });
  expect(r.status).toBe(201);
  return r.body.instance_id as string;
};

describe('405', () => {
  it('a known path with another method is a 405 with Allow', async () => {
    const r = await app.request('/v1/instances', { method: 'DELETE', headers: auth });
    expect(r.status).toBe(405);
    expect(r.headers.get('Allow')).toBe('GET, POST');
    expect((await r.json()).error.code).toBe('method_not_allowed');
    const one = await app.request('/v1/instances/0123abcd', { method: 'PUT', headers: auth });
    expect([one.status, one.headers.get('Allow')]).toEqual([405, 'GET']);
    const wf = await app.request('/v1/workflows/some.name', { method: 'PATCH', headers: auth });
    expect([wf.status, wf.headers.get('Allow')]).toEqual([405, 'DELETE, GET']);
  });

  it('an unknown path is still a 404', async () => {
    const r = await app.request('/v1/nothing-here', { method: 'GET', headers: auth });
    expect(r.status).toBe(404);
    expect(r.headers.get('Allow')).toBeNull();
  });
});

describe('validation by the route definitions (@hono/zod-openapi) keeps our error body', () => {
  it('a body that is not application/json is a 415; JSON that is not an object the schema wants a 400', async () => {
    const plain = await app.request('/v1/instances', { method: 'POST', headers: { ...auth, 'Content-Type': 'text/plain' }, body: `{"workflow":"'SELECT 1'"}` });
    expect([plain.status, await plain.json()]).toEqual([415, { error: { code: 'unsupported_media_type', message: expect.stringContaining('application/json') } }]);
    const none = await app.request('/v1/instances', { method: 'POST', headers: auth, body: `{"workflow":"'SELECT 1'"}` });
    expect(none.status).toBe(415);
    const json = { ...auth, 'Content-Type': 'application/json' };
    const empty = await app.request('/v1/instances', { method: 'POST', headers: json, body: '' });
    expect([empty.status, (await empty.json()).error.code]).toEqual([400, 'invalid_json']);
    const bad = await app.request('/v1/instances', { method: 'POST', headers: json, body: '{"workflow": 1}' });
    expect([bad.status, await bad.json()]).toEqual([400, { error: { code: 'invalid_body', message: expect.stringMatching(/^workflow: /) } }]);
    const key = await app.request('/v1/instances', { method: 'POST', headers: { ...json, 'Idempotency-Key': 'has space' }, body: `{"workflow":"'SELECT 1'"}` });
    expect([key.status, (await key.json()).error.code]).toEqual([400, 'invalid_idempotency_key']);
    const q = await app.request('/v1/workflows?limit=5000', { headers: auth });
    expect([q.status, (await q.json()).error]).toEqual([400, { code: 'invalid_query', message: expect.stringMatching(/^limit: /) }]);
    const name = await app.request('/v1/workflows/-bad-', { headers: auth });
    expect([name.status, await name.json()]).toEqual([404, { error: { code: 'not_found', message: 'workflow "-bad-" not found' } }]);
  });
});

describe('X-Request-Id', () => {
  it("echoes the client's id and puts it on every log line of the request", async () => {
    lines.length = 0;
    const r = await app.request('/v1/instances?limit=1', { headers: { ...auth, 'X-Request-Id': 'req-abc.123' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('X-Request-Id')).toBe('req-abc.123');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.fields?.request_id === 'req-abc.123')).toBe(true);
    expect(lines.find((l) => l.msg === 'api request')?.fields).toMatchObject({ method: 'GET', path: '/v1/instances', status: 200 });
  });

  it('makes one when the client sent none or an unusable one, errors included', async () => {
    const none = await app.request('/v1/instances');
    expect(none.status).toBe(401);
    expect(none.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
    const bad = await app.request('/healthz', { headers: { 'X-Request-Id': 'has spaces in it' } });
    expect(bad.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('/docs', () => {
  it('serves the interactive reference over /v1/openapi.json, without a token', async () => {
    const r = await app.request('/docs');
    expect(r.status).toBe(200);
    expect(r.headers.get('Content-Type')).toContain('text/html');
    const html = await r.text();
    expect(html).toContain('SwaggerUIBundle');
    expect(html).toContain('/v1/openapi.json');
  });

  it('the document describes Idempotency-Key, ?wait= and the error object', async () => {
    const doc = (await (await app.request('/v1/openapi.json')).json()) as any;
    expect(doc.paths['/v1/instances'].post.parameters.map((p: any) => p.name)).toContain('Idempotency-Key');
    expect(doc.paths['/v1/instances/{instance_id}'].get.parameters.map((p: any) => p.name)).toContain('wait');
    expect(doc.components.schemas.Instance.properties.error).toBeDefined();
    expect(Object.keys(doc.components.schemas.InstanceError.properties).sort()).toEqual(['attempt', 'code', 'detail', 'hint', 'message', 'node_id']);
  });
});

describe('CORS', () => {
  it('answers preflights for configured origins only', async () => {
    const cors = createApp({ db: t.db, corsOrigins: ['https://app.example'] });
    const pre = await cors.request('/v1/instances', {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,idempotency-key' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(pre.headers.get('Access-Control-Allow-Headers')).toContain('Idempotency-Key');
    const other = await cors.request('/healthz', { headers: { Origin: 'https://evil.example' } });
    expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const off = await app.request('/healthz', { headers: { Origin: 'https://app.example' } });
    expect(off.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});

describe('?wait=', () => {
  it('answers at once without wait, and as soon as the instance finishes with it', async () => {
    const id = await start(`'SELECT 7 AS n'`);
    expect((await call('GET', `/v1/instances/${id}`, { token: TOKEN })).body.status).toBe('pending');
    const waiting = call('GET', `/v1/instances/${id}?wait=2`, { token: TOKEN });
    await engineFor(t).drain();
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'completed', result: { rows: [{ n: 7 }] } });
  });

  it('gives up when the time is over (capped by maxWaitSeconds) and answers the current state', async () => {
    const id = await start(`df.wait_for_signal('never')`);
    await engineFor(t).drain();
    const t0 = Date.now();
    const r = await call('GET', `/v1/instances/${id}?wait=30`, { token: TOKEN });
    const took = Date.now() - t0;
    expect(r.body.status).toBe('running');
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(10_000);
  });

  it('a bad wait is a 400', async () => {
    const id = await start(`'SELECT 1'`);
    for (const q of ['wait=soon', 'wait=-1', 'other=1']) {
      expect((await call('GET', `/v1/instances/${id}?${q}`, { token: TOKEN })).body.error.code, q).toBe('invalid_query');
    }
  });
});
