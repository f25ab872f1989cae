/**
 * GET /v1/instances/{instance_id}/events/stream (server-sent events) on the Node runtime's app: the
 * instance first, each status change and each new event while the engine runs it, `end` once it is
 * finished, then the stream closes; Last-Event-ID (or ?after=) resumes after an event; unknown and
 * other roles' instances are JSON 404s; a stream that outlives its limit closes without `end`.
 * (The same in workerd: test/workerd/api-reliability.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { serveFetch, type ApiServer } from '../../src/runtime/node/serve.ts';
import { createRole, grantToOwner, useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client, sseReader } from './helpers.ts';

const t = useTestDb();
const TOKEN = 'static-token-for-the-stream-tests-01';
const BOB = 'static-token-for-bob-in-stream-test-1';
let app: ReturnType<typeof createApp>;
let call: ReturnType<typeof client>;

const start = async (workflow: string) => {
  const r = await call('POST', '/v1/instances', { token: TOKEN, body: { workflow } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.instance_id as string;
};
const open = (id: string, headers: Record<string, string> = {}, query = '', a = app) =>
  a.request(`/v1/instances/${id}/events/stream${query}`, { headers: { Authorization: `Bearer ${TOKEN}`, ...headers } });
const drain = () => engineFor(t).drain();

beforeAll(async () => {
  const bob = t.role('bob');
  await createRole(t, bob, `LOGIN PASSWORD 'pw'`);
  await t.query('SELECT df.grant_usage($1)', [bob]);
  await grantToOwner(t, bob);
  app = createApp({ db: t.db, streamPollMs: 20, staticTokens: [{ token: TOKEN, role: inject('pg').owner }, { token: BOB, role: bob }] });
  call = client(app);
});

let server: ApiServer | undefined;
afterAll(() => server?.close());

describe('the event stream', () => {
  it('streams over a real port (@hono/node-server) as the engine runs the instance', async () => {
    server = await serveFetch(app.fetch, { port: 0 });
    const id = await start(`df.wait_for_signal('go')`);
    const res = await fetch(`${server.url}/v1/instances/${id}/events/stream`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect([res.status, res.headers.get('Content-Type')]).toEqual([200, 'text/event-stream']);
    const s = sseReader(res);
    expect(await s.next()).toMatchObject({ event: 'instance', data: { status: 'pending' } });
    await drain();
    expect((await s.until((e) => e.event === 'instance')).at(-1)!.data.status).toBe('running');
    await call('POST', `/v1/instances/${id}/signals/go`, { token: TOKEN, body: { ok: 1 } });
    await drain();
    const rest = await s.until(() => false);
    expect(rest.find((e) => e.event === 'instance')!.data).toMatchObject({ status: 'completed', result: expect.anything() });
    expect(rest.at(-1)).toEqual({ event: 'end', data: { status: 'completed' } });
  });

  it('sends the instance, its status changes and events while it runs, then end, then closes', async () => {
    const id = await start(`df.wait_for_signal('go') ~> 'SELECT 1/0'`);
    const res = await open(id);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toContain('text/event-stream');
    const s = sseReader(res);
    const first = await s.next();
    expect(first).toMatchObject({ event: 'instance', data: { instance_id: id, status: 'pending', started_at: null, result: null } });
    expect(first!.data).not.toHaveProperty('nodes');

    await drain();
    const running = await s.until((e) => e.event === 'instance');
    expect(running.at(-1)!.data).toMatchObject({ status: 'running', started_at: expect.any(String) });

    expect((await call('POST', `/v1/instances/${id}/signals/go`, { token: TOKEN, body: {} })).status).toBe(200);
    await drain();
    const rest = await s.until(() => false);
    const kinds = rest.map((e) => e.event);
    expect(kinds.at(-1)).toBe('end');
    expect(rest.at(-1)!.data).toEqual({ status: 'failed' });
    const failed = rest.find((e) => e.event === 'instance')!;
    expect(failed.data).toMatchObject({ status: 'failed', error: { code: '22012' }, finished_at: expect.any(String) });
    // Every event of its history, in order, each with its event_id as the SSE id.
    const sent = [...running, ...rest].filter((e) => e.event === 'event');
    const history = (await call('GET', `/v1/instances/${id}/events?limit=1000`, { token: TOKEN })).body.events;
    expect(sent.map((e) => e.data)).toEqual(history);
    expect(sent.map((e) => e.id)).toEqual(history.map((h: any) => String(h.event_id)));
    expect(history.some((h: any) => h.kind === 'failed')).toBe(true);
  });

  it('a finished instance: the instance, every event and end at once', async () => {
    const id = await start(`'SELECT 1/0'`);
    await drain();
    const all = await sseReader(await open(id)).until(() => false);
    expect(all[0]).toMatchObject({ event: 'instance', data: { status: 'failed' } });
    expect(all.at(-1)).toEqual({ event: 'end', data: { status: 'failed' } });
    expect(all.filter((e) => e.event === 'event').length).toBeGreaterThan(0);
  });

  it('Last-Event-ID and ?after= resume after that event', async () => {
    const id = await start(`'SELECT 1/0'`);
    await drain();
    for (const n of [1, 2]) {
      await t.query(`INSERT INTO df.events (instance_id, kind, detail, submitted_by) SELECT id, 'note', $2, submitted_by FROM df.instances WHERE id = $1`, [id, `n${n}`]);
    }
    const events = (await sseReader(await open(id)).until(() => false)).filter((e) => e.event === 'event');
    expect(events.length).toBe(3);
    const resumed = (await sseReader(await open(id, { 'Last-Event-ID': events[0]!.id! })).until(() => false)).filter((e) => e.event === 'event');
    expect(resumed.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
    const after = (await sseReader(await open(id, {}, `?after=${events.at(-1)!.id}`)).until(() => false)).map((e) => e.event);
    expect(after).toEqual(['instance', 'end']);
  });

  it('an instance removed while streamed ends the stream with an error event (our body, no internals)', async () => {
    const id = await start(`df.wait_for_signal('never')`);
    const s = sseReader(await open(id));
    expect((await s.next())!.event).toBe('instance');
    await t.query('DELETE FROM df.instances WHERE id = $1', [id]);
    expect(await s.until(() => false)).toEqual([{ event: 'error', data: { error: { code: 'not_found', message: `instance ${id} not found` } } }]);
  });

  it('closes without end when it has been open longer than its limit; idle, it sends keep-alive comments', async () => {
    const id = await start(`df.wait_for_signal('never')`);
    const short = createApp({ db: t.db, streamPollMs: 20, streamMaxSeconds: 0.3, streamKeepAliveMs: 50, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] });
    const s = sseReader(await open(id, {}, '', short));
    const all = await s.until(() => false);
    expect(all.map((e) => e.event)).toEqual(['instance']);
    expect(s.comments()).toBeGreaterThan(0);
    const quiet = sseReader(await open(id, {}, '', createApp({ db: t.db, streamPollMs: 20, streamMaxSeconds: 0.3, staticTokens: [{ token: TOKEN, role: inject('pg').owner }] })));
    await quiet.until(() => false);
    expect(quiet.comments()).toBe(0);
  });

  it('unknown, malformed and another role’s instances are JSON 404s; a bad query a 400', async () => {
    const id = await start(`'SELECT 1'`);
    for (const bad of ['0000beef', 'NOTHEX!!']) {
      const r = await open(bad);
      expect([r.status, (await r.json()).error.code]).toEqual([404, 'not_found']);
    }
    const bobs = await app.request(`/v1/instances/${id}/events/stream`, { headers: { Authorization: `Bearer ${BOB}` } });
    expect([bobs.status, (await bobs.json()).error.code]).toEqual([404, 'not_found']);
    const q = await open(id, {}, '?after=x');
    expect([q.status, (await q.json()).error.code]).toEqual([400, 'invalid_query']);
    expect((await app.request(`/v1/instances/${id}/events/stream`)).status).toBe(401);
  });
});
