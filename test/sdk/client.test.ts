/**
 * The typed client against the real API as `npm start` serves it (startApiServer on a real port, over
 * real HTTP), on this file's database; the engine is driven by hand (drain) between calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startApiServer, type ApiServer } from '../../src/runtime/node/serve.ts';
import { silentLogger } from '../../src/log.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { createClient, PgflareError, PgflareTimeoutError, seq, sql, waitForSignal, type PgflareClient } from '../../src/sdk/index.ts';

const t = useTestDb();
const TOKEN = 'sdk-client-test-token-0001';
let server: ApiServer;
let pf: PgflareClient;
let engine: Engine;
const fetched: string[] = [];

beforeAll(async () => {
  server = (await startApiServer({
    databaseUrl: t.url(),
    log: silentLogger,
    defaultHost: '127.0.0.1',
    env: { PGFLARE_API_PORT: '0', PGFLARE_API_TOKENS: `${TOKEN}=${inject('pg').owner}` },
  }))!;
  // The client's own fetch option, recording what it asks for (and proving the option is used).
  pf = createClient({ baseUrl: `${server.url}/`, token: TOKEN, fetch: (url, init) => (fetched.push(`${init.method} ${url}`), fetch(url, init)) });
  engine = engineFor(t);
  await t.query(`CREATE TABLE effects (tag text NOT NULL)`);
});
afterAll(async () => {
  await server?.close();
});

/** Drives the engine until `p` settles: the client polls the API, the engine moves the instance on. */
async function driven<T>(p: Promise<T>): Promise<T> {
  let settled = false;
  const out = p.finally(() => (settled = true));
  for (let i = 0; i < 10_000 && !settled; i++) {
    await engine.drain();
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

const fast = { interval: 0.005, maxInterval: 0.02 };

describe('instances', () => {
  it('health', async () => {
    // startApiServer requires a worker seen within PGFLARE_HEALTH_WORKER_MAX_AGE_S (180 s): one beats now.
    await t.query(`INSERT INTO df._worker_epoch (epoch_id) VALUES (gen_random_uuid())`);
    expect(await pf.health()).toMatchObject({ ok: true, database: 'ok', worker: { seen: true, max_age_s: 180 } });
  });

  it('starts DSL text with a label, gets it, waits for it', async () => {
    const started = await pf.instances.start(`('SELECT 41 AS n' |=> 'a') ~> 'SELECT $a.n + 1 AS answer'`, { label: 'sdk-dsl' });
    expect(started).toEqual({ instance_id: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'pending' });
    const before = await pf.instances.get(started.instance_id);
    expect(before).toMatchObject({ instance_id: started.instance_id, label: 'sdk-dsl', status: 'pending', result: null });
    const done = await driven(pf.instances.wait(started.instance_id, fast));
    expect(done.status).toBe('completed');
    expect(done.result).toEqual({ row_count: 1, rows: [{ answer: 42 }] });
    expect(done.nodes.length).toBe(3);
    expect(fetched.filter((f) => f.includes(`/v1/instances/${started.instance_id}`)).length).toBeGreaterThanOrEqual(2);
  });

  it('runs a builder graph (label from the step) and a raw envelope', async () => {
    const wf = seq(sql(`INSERT INTO effects VALUES ('builder') RETURNING 7 AS seven`).as('x'), sql('SELECT $x.seven * 6 AS n')).label('sdk-graph');
    const done = await driven(pf.instances.run(wf, fast));
    expect(done).toMatchObject({ status: 'completed', label: 'sdk-graph', result: { rows: [{ n: 42 }] } });
    expect(await t.query(`SELECT tag FROM effects`)).toEqual([{ tag: 'builder' }]);
    const raw = await driven(pf.instances.run({ node_type: 'SQL', query: 'SELECT 5 AS five' }, fast));
    expect(raw.result).toMatchObject({ rows: [{ five: 5 }] });
  });

  it('lists every instance across pages, by status and label', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await pf.instances.start(`'SELECT ${i}'`, { label: 'sdk-pages' })).instance_id);
    const seen: string[] = [];
    for await (const i of pf.instances.list({ label: 'sdk-pages', limit: 2 })) seen.push(i.instance_id);
    expect(seen.sort()).toEqual([...ids].sort());
    const pages = [];
    for await (const p of pf.instances.list({ label: 'sdk-pages', limit: 2 }).pages()) pages.push(p.instances.length);
    expect(pages).toEqual([2, 2, 1]);
    const one = await pf.instances.page({ label: 'sdk-pages', limit: 2 });
    expect(one.next_cursor).toEqual(expect.any(String));
    const second = await pf.instances.page({ label: 'sdk-pages', limit: 2, cursor: one.next_cursor! });
    expect(second.instances.map((i) => i.instance_id)).not.toContain(one.instances[0].instance_id);
    await driven(pf.instances.wait(ids[4], fast));
    const completed = [];
    for await (const i of pf.instances.list({ label: 'sdk-pages', status: 'completed' })) completed.push(i.instance_id);
    expect(completed.sort()).toEqual([...ids].sort());
  });

  it('signals a waiting instance; explain and events describe it', async () => {
    const { instance_id: id } = await pf.instances.start(seq(waitForSignal('go').as('sig'), `SELECT $sig::jsonb AS sig`));
    await engine.drain();
    expect((await pf.instances.get(id)).status).toBe('running');
    expect(await pf.instances.explain(id)).toMatch(/SIGNAL/);
    expect(await pf.instances.signal(id, 'go', { ok: true })).toEqual({ ok: true });
    const done = await driven(pf.instances.wait(id, fast));
    expect(done).toMatchObject({ status: 'completed', result: { rows: [{ sig: { data: { ok: true }, timed_out: false, signal_name: 'go' } }] } });
  });

  it('events tell the story of a retried step that failed', async () => {
    const done = await driven(pf.instances.run(sql('SELECT 1/0').retry({ maxAttempts: 2, backoff: 0 }), fast));
    expect(done.status).toBe('failed');
    const events = await pf.instances.events(done.instance_id);
    expect(events.filter((e) => e.attempt !== null).map((e) => e.attempt)).toContain(1);
    expect(events.map((e) => e.detail).join('\n')).toMatch(/division by zero/);
    expect(events.map((e) => e.event_id)).toEqual([...events.map((e) => e.event_id)].sort((a, b) => a - b));
  });

  it('a failed instance has a typed error with the SQLSTATE; result is JSON', async () => {
    const failed = await driven(pf.instances.run(sql('SELECT 1/0'), fast));
    expect(failed.error).toMatchObject({ code: '22012', node_id: expect.any(String), attempt: 1 });
    expect(failed.result).toBeNull();
    const ok = await driven(pf.instances.run(`'SELECT 3 AS n'`, fast));
    expect(ok).toMatchObject({ error: null, result: { rows: [{ n: 3 }] }, finished_at: expect.any(String) });
  });

  it('idempotencyKey: the same start twice is one instance', async () => {
    const a = await pf.instances.start(`'SELECT 1'`, { label: 'sdk-idem', idempotencyKey: 'sdk-key-1' });
    const b = await pf.instances.start(`'SELECT 1'`, { label: 'sdk-idem', idempotencyKey: 'sdk-key-1' });
    expect(b).toEqual(a);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE label = 'sdk-idem'`)).toEqual([{ n: 1 }]);
    const err = await pf.instances.start(`'SELECT 2'`, { label: 'sdk-idem', idempotencyKey: 'sdk-key-1' }).catch((e) => e);
    expect(err).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
  });

  it('wait long-polls: one request waits on the server until the instance finishes', async () => {
    const { instance_id: id } = await pf.instances.start(`'SELECT 1'`);
    const urls: string[] = [];
    const spy = createClient({ baseUrl: server.url, token: TOKEN, fetch: (u, init) => (urls.push(u), fetch(u, init)) });
    const done = await driven(spy.instances.wait(id, { timeout: 20, interval: 5 }));
    expect(done.status).toBe('completed');
    expect(urls.every((u) => /[?&]wait=\d/.test(u))).toBe(true);
    // An interval of 5 s between polls would have made several requests impossible in this time: the
    // waits happened on the server.
    expect(urls.length).toBeLessThanOrEqual(2);
  });

  it('cancels; a finished instance is a typed 409', async () => {
    const { instance_id: id } = await pf.instances.start(waitForSignal('never'));
    await engine.drain();
    expect((await pf.instances.cancel(id, 'sdk test')).message).toEqual(expect.any(String));
    expect((await pf.instances.wait(id)).status).toBe('cancelled');
    const done = await driven(pf.instances.run(`'SELECT 1'`, fast));
    const err = await pf.instances.cancel(done.instance_id).catch((e) => e);
    expect(err).toBeInstanceOf(PgflareError);
    expect(err).toMatchObject({ status: 409, code: 'instance_finished', method: 'POST' });
  });

  it('wait gives up after its time-out with a typed error', async () => {
    const { instance_id: id } = await pf.instances.start(waitForSignal('never'));
    const err = await pf.instances.wait(id, { timeout: 0.05, interval: 0.01 }).catch((e) => e);
    expect(err).toBeInstanceOf(PgflareTimeoutError);
    expect(err).toMatchObject({ instanceId: id, lastStatus: 'pending' });
  });

  it('wait stops when its AbortSignal fires', async () => {
    const { instance_id: id } = await pf.instances.start(waitForSignal('never'));
    const ctl = new AbortController();
    const waiting = pf.instances.wait(id, { timeout: 60, interval: 0.01, signal: ctl.signal });
    ctl.abort(new Error('stop waiting'));
    await expect(waiting).rejects.toThrow('stop waiting');
  });

  it('an answer that is not the API error body is an http_error with the status', async () => {
    const proxy = createClient({ baseUrl: server.url, token: TOKEN, fetch: async () => new Response('<html>bad gateway</html>', { status: 502 }) });
    await expect(proxy.instances.get('deadbeef')).rejects.toMatchObject({ name: 'PgflareError', status: 502, code: 'http_error', message: expect.stringContaining('bad gateway') });
  });

  it('turns the API error body into PgflareError (404, 400, 422, 401)', async () => {
    const codeOf = (p: Promise<unknown>) => p.then(() => 'no error', (e: PgflareError) => [e.constructor.name, e.status, e.code]);
    expect(await codeOf(pf.instances.get('deadbeef'))).toEqual(['PgflareError', 404, 'not_found']);
    expect(await codeOf(pf.instances.start(''))).toEqual(['PgflareError', 400, 'invalid_body']);
    expect(await codeOf(pf.instances.list({ limit: 0 })[Symbol.asyncIterator]().next())).toEqual(['PgflareError', 400, 'invalid_query']);
    expect(await codeOf(pf.instances.start(`df.sleep(-1)`))).toEqual(['PgflareError', 422, 'invalid_workflow']);
    expect(await codeOf(pf.instances.start({ node_type: 'NOPE' } as never))).toEqual(['PgflareError', 422, 'invalid_workflow']);
    const anon = createClient({ baseUrl: server.url });
    expect(await codeOf(anon.instances.get('deadbeef'))).toEqual(['PgflareError', 401, 'unauthorized']);
    const err = await pf.instances.get('deadbeef').catch((e) => e);
    expect(err.message).toMatch(/deadbeef not found/);
  });
});

it('refuses, in the types, a builder step that reads a name nothing binds', () => {
  const typeOnly = () => {
    // @ts-expect-error $nope is bound nowhere
    void pf.instances.start(sql('SELECT $nope'));
    void pf.instances.start(seq(sql('SELECT 1').as('ok'), 'SELECT $ok'));
    void pf.workflows.define('w', sql('SELECT $input.n')); // a named workflow's input is bound by the API
    // @ts-expect-error $other is bound nowhere
    void pf.workflows.define('w', sql('SELECT $other'));
  };
  expect(typeOnly).toBeInstanceOf(Function);
});

describe('named workflows, schedules, hooks', () => {
  it('defines, lists, reads, starts with input and drops a workflow', async () => {
    const wf = seq(sql('SELECT $input.n * 2 AS doubled').as('d'), 'SELECT $d.doubled + 1 AS out');
    expect(await pf.workflows.define('sdk.double', wf, { description: 'doubles' })).toEqual({ name: 'sdk.double', version: 1 });
    expect(await pf.workflows.define('sdk.double', `'SELECT 0'`)).toEqual({ name: 'sdk.double', version: 2 });
    expect((await pf.workflows.list()).map((w) => [w.name, w.latest_version])).toContainEqual(['sdk.double', 2]);
    const got = await pf.workflows.get('sdk.double');
    expect(got.versions.map((v) => v.version)).toEqual([1, 2]);
    const started = await pf.workflows.start('sdk.double', { input: { n: 20 }, version: 1 });
    expect(started).toMatchObject({ version: 1, status: 'pending' });
    const done = await driven(pf.instances.wait(started.instance_id, fast));
    expect(done).toMatchObject({ label: 'sdk.double', result: { rows: [{ out: 41 }] } });
    expect(await pf.workflows.drop('sdk.double')).toBe(2);
    await expect(pf.workflows.get('sdk.double')).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });

  it('list follows every page: 1001 workflows are two requests of 1000', async () => {
    fetched.length = 0;
    await t.query(`SELECT df.define_workflow('bulk-' || lpad(g::text, 4, '0'), 'SELECT 1') FROM generate_series(1, 1001) AS g`);
    const names = (await pf.workflows.list()).map((w) => w.name).filter((n) => n.startsWith('bulk-'));
    expect(names).toHaveLength(1001);
    expect(names[0]).toBe('bulk-0001');
    expect(names.at(-1)).toBe('bulk-1001');
    expect(fetched.filter((f) => f.includes('/v1/workflows?'))).toHaveLength(2);
    await t.query(`SELECT df.drop_workflow('bulk-' || lpad(g::text, 4, '0')) FROM generate_series(1, 1001) AS g`);
  });

  it('creates, lists, reads, changes, pauses, resumes and drops a schedule', async () => {
    await pf.workflows.define('sdk.nightly', `'SELECT 1'`);
    const s = await pf.schedules.create({ name: 'sdk-nightly', workflow: 'sdk.nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', input: { full: true } });
    expect(s).toMatchObject({ name: 'sdk-nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', paused: false, input: { full: true } });
    expect((await pf.schedules.list()).map((x) => x.name)).toEqual(['sdk-nightly']);
    expect(await pf.schedules.get('sdk-nightly')).toMatchObject({ name: 'sdk-nightly', fires: [] });
    expect(await pf.schedules.update('sdk-nightly', { cron: '30 4 * * *' })).toMatchObject({ cron: '30 4 * * *' });
    expect((await pf.schedules.pause('sdk-nightly')).paused).toBe(true);
    expect((await pf.schedules.resume('sdk-nightly')).paused).toBe(false);
    await expect(pf.schedules.create({ name: 'sdk-bad', workflow: 'sdk.nightly', cron: 'not cron' })).rejects.toMatchObject({ status: 422, code: 'invalid_schedule' });
    await pf.schedules.drop('sdk-nightly');
    expect(await pf.schedules.list()).toEqual([]);
  });

  it('creates, lists, reads, rotates and drops a webhook', async () => {
    await pf.workflows.define('sdk.on-push', `'SELECT 1'`);
    const created = await pf.hooks.create({ name: 'sdk-push', workflow: 'sdk.on-push', scheme: 'github' });
    expect(created).toMatchObject({ name: 'sdk-push', scheme: 'github', secret: expect.any(String), deliveries: 0 });
    expect((await pf.hooks.list()).map((h) => h.name)).toEqual(['sdk-push']);
    expect(await pf.hooks.get('sdk-push')).toMatchObject({ name: 'sdk-push', recent_deliveries: [] });
    expect(await pf.hooks.deliveries('sdk-push')).toEqual([]);
    const rotated = await pf.hooks.rotate('sdk-push', 'a-new-secret-of-enough-length');
    expect(rotated).toEqual({ name: 'sdk-push', secret: 'a-new-secret-of-enough-length' });
    expect((await pf.hooks.rotate('sdk-push')).secret).not.toBe(rotated.secret);
    await pf.hooks.drop('sdk-push');
    await expect(pf.hooks.get('sdk-push')).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });
});
