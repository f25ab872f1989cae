/**
 * The REST API against the real test database: every route's happy path, pagination, role isolation
 * (another role's instance is a 404), auth failures, bad bodies and queries, DSL injection over HTTP,
 * and an instance started over HTTP that the engine then runs to completion.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { silentLogger } from '../../src/log.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import type { Db } from '../../src/engine/db.ts';
import { asRole as asRoleOf, createRole, grantToOwner, useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const OWNER = inject('pg').owner;
const STATIC = 'static-token-for-the-owner-0123456789';
let call: ReturnType<typeof client>;
let alice: string, bob: string, carol: string;
let aliceToken: string, bobToken: string, carolToken: string, ownerToken: string;

/** Runs `sql` as `role` (the owner is a member of the test roles), returning the rows. */
const asRole = <R = any>(role: string, sql: string, params: unknown[] = []) => asRoleOf<R>(t, role, sql, params);

async function makeRole(base: string, memberOfOwner: boolean): Promise<string> {
  const role = t.role(base);
  await createRole(t, role, `LOGIN PASSWORD 'pw'`);
  await t.query('SELECT df.grant_usage($1)', [role]);
  if (memberOfOwner) await grantToOwner(t, role);
  return role;
}

const start = async (token: string, workflow: string, label?: string) => {
  const r = await call('POST', '/v1/instances', { token, body: { workflow, ...(label ? { label } : {}) } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.instance_id as string;
};
const drain = () => engineFor(t).drain();

beforeAll(async () => {
  alice = await makeRole('alice', true);
  bob = await makeRole('bob', true);
  carol = await makeRole('carol', false);
  [{ t: ownerToken }] = await t.query('SELECT df.create_api_token($1) AS t', ['owner']);
  [{ t: aliceToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', alice]);
  [{ t: bobToken }] = await asRole(bob, 'SELECT df.create_api_token($1) AS t', ['mine']);
  [{ t: carolToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', carol]);
  const app = createApp({
    db: t.db,
    staticTokens: [
      { token: STATIC, role: OWNER },
      { token: 'static-token-for-a-ghost-role', role: 'no_such_role_anywhere' },
    ],
  });
  call = client(app);
});

describe('tokens in Postgres', () => {
  it('are pgf_ + base64url of 32 bytes, stored only as their SHA-256', async () => {
    expect(aliceToken).toMatch(/^pgf_[A-Za-z0-9_-]{43}$/);
    const rows = await t.query('SELECT name, role::text AS role, token_hash FROM df._api_tokens WHERE name = $1 AND role = $2::regrole', ['main', alice]);
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(await t.query('SELECT * FROM df._api_tokens'))).not.toContain(aliceToken.slice(4));
  });

  it('a role manages its own tokens; only the owner or a superuser makes them for another role', async () => {
    await expect(asRole(alice, 'SELECT df.create_api_token($1, $2)', ['x', bob])).rejects.toMatchObject({ code: '42501' });
    await expect(asRole(alice, 'SELECT df.revoke_api_token($1, $2)', ['mine', bob])).rejects.toMatchObject({ code: '42501' });
    // RLS: alice sees only her own tokens and never a hash.
    expect(await asRole(alice, 'SELECT name FROM df._api_tokens')).toEqual([{ name: 'main' }]);
    await expect(asRole(alice, 'SELECT token_hash FROM df._api_tokens')).rejects.toMatchObject({ code: '42501' });
    await expect(t.query('SELECT df.create_api_token($1, $2)', ['main', alice])).rejects.toMatchObject({ code: '23505' });
    await expect(t.query('SELECT df.create_api_token($1, $2)', ['x', 'no_such_role'])).rejects.toMatchObject({ code: '42704' });
    await expect(t.query('SELECT df.create_api_token($1)', [''])).rejects.toMatchObject({ code: '22023' });
    await expect(t.query('SELECT df.revoke_api_token($1)', ['never-made'])).rejects.toMatchObject({ code: 'P0002' });
  });
});

describe('unauthenticated routes', () => {
  it('GET /healthz', async () => {
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, body: { ok: true } });
  });

  it('GET /v1/openapi.json lists every route', async () => {
    const r = await call('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    const ops = Object.entries(r.body.paths as Record<string, object>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
    expect(ops.sort()).toEqual(
      [
        'GET /healthz',
        'GET /v1/openapi.json',
        'POST /v1/instances',
        'GET /v1/instances',
        'GET /v1/instances/{instance_id}',
        'GET /v1/instances/{instance_id}/explain',
        'GET /v1/instances/{instance_id}/events',
        'GET /v1/instances/{instance_id}/events/stream',
        'POST /v1/instances/{instance_id}/cancel',
        'POST /v1/instances/{instance_id}/resume',
        'POST /v1/instances/{instance_id}/restart',
        'POST /v1/instances/{instance_id}/signals/{name}',
        'POST /v1/workflows',
        'GET /v1/workflows',
        'GET /v1/workflows/{name}',
        'DELETE /v1/workflows/{name}',
        'POST /v1/workflows/{name}/instances',
        'POST /v1/schedules',
        'GET /v1/schedules',
        'GET /v1/schedules/{name}',
        'PATCH /v1/schedules/{name}',
        'DELETE /v1/schedules/{name}',
        'POST /v1/schedules/{name}/pause',
        'POST /v1/schedules/{name}/resume',
        'POST /hooks/{name}',
        'POST /v1/hooks',
        'GET /v1/hooks',
        'GET /v1/hooks/{name}',
        'GET /v1/hooks/{name}/deliveries',
        'DELETE /v1/hooks/{name}',
        'POST /v1/hooks/{name}/rotate',
      ].sort(),
    );
    expect(r.body.components.schemas.StartRequest.properties).toHaveProperty('workflow');
    expect(JSON.parse(JSON.stringify(r.body))).toEqual(r.body);
  });

  it('unknown routes are JSON 404s', async () => {
    expect(await call('GET', '/v2/nothing')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });
});

describe('authentication', () => {
  const cases: [string, { auth?: string; token?: string }][] = [
    ['missing header', {}],
    ['wrong scheme', { auth: `Basic ${btoa('a:b')}` }],
    ['empty bearer', { auth: 'Bearer ' }],
    ['two tokens', { auth: 'Bearer abc def' }],
    ['unknown token', { token: 'pgf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['static token, one character off', { token: STATIC.slice(0, -1) + 'x' }],
  ];
  it.each(cases)('%s → 401 unauthorized', async (_name, opts) => {
    const r = await call('GET', '/v1/instances', opts);
    expect(r).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
  });

  it('401 comes before the body is looked at', async () => {
    expect(await call('POST', '/v1/instances', { raw: 'not json' })).toMatchObject({ status: 401 });
  });

  it('a revoked token stops working', async () => {
    const [{ t: tok }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['short-lived', alice]);
    expect((await call('GET', '/v1/instances', { token: tok })).status).toBe(200);
    await asRole(alice, 'SELECT df.revoke_api_token($1)', ['short-lived']);
    expect(await call('GET', '/v1/instances', { token: tok })).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
  });

  it('static tokens and stored tokens both work; "Bearer" is case-insensitive', async () => {
    expect((await call('GET', '/v1/instances', { token: STATIC })).status).toBe(200);
    expect((await call('GET', '/v1/instances', { auth: `bearer ${ownerToken}` })).status).toBe(200);
  });

  it("403 when the API's connecting role may not act as the token's role", async () => {
    const r = await call('GET', '/v1/instances', { token: carolToken });
    expect(r).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect(await call('GET', '/v1/instances', { token: 'static-token-for-a-ghost-role' })).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
  });
});

describe('POST /v1/instances', () => {
  it('starts a DSL workflow as the token role', async () => {
    const r = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: `'SELECT 1'`, label: 'alice' } });
    expect(r).toMatchObject({ status: 201, body: { status: 'pending' } });
    const [row] = await t.query('SELECT submitted_by::text AS owner, label FROM df.instances WHERE id = $1', [r.body.instance_id]);
    expect(row).toEqual({ owner: alice, label: 'alice' });
  });

  // The engine here connects as the owner and runs the owner's instances (single-role setup).
  it('starts a DSL workflow that the engine then runs to completion', async () => {
    const r = await call('POST', '/v1/instances', { token: ownerToken, body: { workflow: `'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'`, label: 'first' } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ instance_id: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'pending' });
    expect(r.headers.get('Location')).toBe(`/v1/instances/${r.body.instance_id}`);
    await drain();
    const got = await call('GET', `/v1/instances/${r.body.instance_id}`, { token: ownerToken });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ instance_id: r.body.instance_id, label: 'first', status: 'completed', result: { rows: [{ answer: 42 }] } });
    expect(got.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(got.body.completed_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(got.body.output).toEqual(expect.any(String));
    expect(got.body.nodes).toHaveLength(3);
    expect(got.body.nodes.find((n: any) => n.node_type === 'THEN')).toMatchObject({ status: 'completed', inferred_status: 'completed', result: expect.anything() });
    expect(got.body.nodes.map((n: any) => n.node_type).sort()).toEqual(['SQL', 'SQL', 'THEN']);
  });

  it('starts from graph JSON', async () => {
    const [{ g }] = await t.query(`SELECT ('SELECT 1 AS one' ~> 'SELECT 2 AS two')::jsonb AS g`);
    const r = await call('POST', '/v1/instances', { token: STATIC, body: { graph: g } });
    expect(r.status).toBe(201);
    await drain();
    expect((await call('GET', `/v1/instances/${r.body.instance_id}`, { token: STATIC })).body).toMatchObject({ status: 'completed', result: { rows: [{ two: 2 }] } });
  });

  it('422 invalid_workflow for an invalid graph or DSL, with the database message', async () => {
    const bad = await call('POST', '/v1/instances', { token: aliceToken, body: { graph: { node_type: 'NOPE', query: 'x' } } });
    expect(bad).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow', message: expect.stringContaining("Unknown node_type 'NOPE'") } } });
    const shape = await call('POST', '/v1/instances', { token: aliceToken, body: { graph: { node_type: 'SQL', query: 5 } } });
    expect(shape).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow' } } });
    const arg = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: `df.wait_for_signal('')` } });
    expect(arg).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow', message: 'Signal name cannot be empty' } } });
    const cron = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: `df.wait_for_schedule('nope')` } });
    expect(cron).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow' } } });
    const unquoted = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: 'SELECT 1' } });
    expect(unquoted).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow', message: expect.stringContaining('string literal') } } });
    const nul = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: 'NULL' } });
    expect(nul).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow' } } });
  });

  describe('DSL injection over HTTP is a 422 and runs nothing', () => {
    beforeAll(async () => {
      await t.query('CREATE TABLE precious (x int)');
      await t.query('GRANT ALL ON precious TO PUBLIC');
    });
    const attacks = [
      `'a' ~> 'b'; DROP TABLE precious`,
      `'a' ~> 'b'); DROP TABLE precious; --`,
      `(SELECT 1)`,
      `'x' ~> (SELECT 'DROP TABLE precious')`,
      `pg_sleep(10)`,
      `df.start('SELECT 1')`,
      `'a' -- comment`,
      `'a' /* comment */ ~> 'b'`,
      `$$DROP TABLE precious$$`,
      `'a';`,
      `df.sql('x') ~> pg_catalog.set_config('role', 'postgres', true)`,
    ];
    it.each(attacks)('%s', async (workflow) => {
      const started = Date.now();
      const r = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow } });
      expect(r).toMatchObject({ status: 422, body: { error: { code: 'invalid_workflow' } } });
      expect(Date.now() - started).toBeLessThan(5000);
    });
    it('the table survived and no instance was started', async () => {
      expect(await t.query(`SELECT to_regclass('public.precious') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
      const [{ n }] = await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE root_node IN (SELECT id FROM df.nodes WHERE query LIKE '%precious%')`);
      expect(n).toBe(0);
    });
  });

  describe('bad bodies are 400s', () => {
    const cases: [string, { raw?: string; body?: unknown }, string][] = [
      ['not JSON', { raw: '{"workflow": ' }, 'invalid_json'],
      ['empty body', { raw: '' }, 'invalid_json'],
      ['an array', { body: ["'SELECT 1'"] }, 'invalid_body'],
      ['workflow of the wrong type', { body: { workflow: 5 } }, 'invalid_body'],
      ['graph of the wrong type', { body: { graph: 'SELECT 1' } }, 'invalid_body'],
      ['label of the wrong type', { body: { workflow: "'SELECT 1'", label: 7 } }, 'invalid_body'],
      ['an unknown field', { body: { workflow: "'SELECT 1'", priority: 1 } }, 'invalid_body'],
      ['an oversize label', { body: { workflow: "'SELECT 1'", label: 'x'.repeat(257) } }, 'invalid_body'],
      ['an empty workflow', { body: { workflow: '' } }, 'invalid_body'],
      ['neither workflow nor graph', { body: { label: 'x' } }, 'invalid_body'],
      ['both workflow and graph', { body: { workflow: "'SELECT 1'", graph: { node_type: 'SQL', query: 'SELECT 1' } } }, 'invalid_body'],
    ];
    it.each(cases)('%s', async (_name, opts, code) => {
      const r = await call('POST', '/v1/instances', { token: aliceToken, ...opts });
      expect(r).toMatchObject({ status: 400, body: { error: { code, message: expect.any(String) } } });
    });
    it('a workflow over 256 KiB is a 400', async () => {
      const r = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: `'${'x'.repeat(262_144)}'` } });
      expect(r).toMatchObject({ status: 400, body: { error: { code: 'invalid_body', message: expect.stringContaining('workflow') } } });
    });
    it('a body over the size limit is a 413', async () => {
      const r = await call('POST', '/v1/instances', { token: aliceToken, body: { workflow: `'${'x'.repeat(1_200_000)}'` } });
      expect(r).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    });
  });
});

describe('GET /v1/instances', () => {
  let ids: string[];
  beforeAll(async () => {
    ids = [];
    for (let i = 0; i < 5; i++) ids.push(await start(bobToken, `'SELECT ${i} AS i'`, 'paged'));
  });

  it('pages through every instance exactly once, newest first', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    do {
      const r: any = await call('GET', `/v1/instances?label=paged&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: bobToken });
      expect(r.status).toBe(200);
      sizes.push(r.body.instances.length);
      seen.push(...r.body.instances.map((i: any) => i.instance_id));
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual([...ids].reverse());
  });

  it('filters by status, and rows carry the summary fields', async () => {
    const r = await call('GET', '/v1/instances?status=pending&label=paged&limit=1000', { token: bobToken });
    expect(r.body.instances).toHaveLength(5);
    expect(r.body.next_cursor).toBeNull();
    expect(r.body.instances[0]).toEqual({
      instance_id: ids[4],
      label: 'paged',
      status: 'pending',
      execution_count: 1,
      result: null,
      error: null,
      output: null,
      created_at: expect.any(String),
      started_at: null,
      finished_at: null,
      completed_at: null,
    });
    expect((await call('GET', '/v1/instances?status=completed&label=paged', { token: bobToken })).body.instances).toEqual([]);
  });

  it('another role sees none of them', async () => {
    expect((await call('GET', '/v1/instances?label=paged', { token: aliceToken })).body).toEqual({ instances: [], next_cursor: null });
  });

  it.each([
    ['limit=0'],
    ['limit=1001'],
    ['limit=abc'],
    ['limit=1.5'],
    ['status=done'],
    ['label=' + 'x'.repeat(257)],
    ['cursor=not-hex'],
    ['cursor=abcd'],
    ['color=blue'],
  ])('400 invalid_query for ?%s', async (qs) => {
    const r = await call('GET', `/v1/instances?${qs}`, { token: bobToken });
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'invalid_query' } } });
  });
});

describe('one instance', () => {
  let ownId: string, failedId: string, bobId: string;
  beforeAll(async () => {
    ownId = await start(ownerToken, `'SELECT 1 AS one'`, 'a');
    failedId = await start(ownerToken, `'SELECT 1/0'`, 'b');
    bobId = await start(bobToken, `df.wait_for_signal('go')`, 'b');
    await drain();
  });

  it('GET /v1/instances/:id/explain', async () => {
    const r = await call('GET', `/v1/instances/${ownId}/explain`, { token: ownerToken });
    expect(r.status).toBe(200);
    expect(r.body.text).toContain(`Instance: ${ownId} (a)`);
    expect(r.body.text).toContain('completed');
  });

  it('GET /v1/instances/:id/events', async () => {
    const r = await call('GET', `/v1/instances/${failedId}/events`, { token: ownerToken });
    expect(r.status).toBe(200);
    expect(r.body.events.length).toBeGreaterThan(0);
    expect(r.body.events.at(-1)).toMatchObject({ kind: 'failed', node_id: expect.any(String), detail: expect.stringContaining('division by zero') });
    expect((await call('GET', `/v1/instances/${bobId}/events`, { token: bobToken })).body).toEqual({ events: expect.any(Array), next_cursor: null });
  });

  it("another role's instance is a 404 on every route", async () => {
    const token = aliceToken;
    for (const [method, path, body] of [
      ['GET', `/v1/instances/${bobId}`],
      ['GET', `/v1/instances/${bobId}/explain`],
      ['GET', `/v1/instances/${bobId}/events`],
      ['POST', `/v1/instances/${bobId}/cancel`, {}],
      ['POST', `/v1/instances/${bobId}/signals/go`, {}],
    ] as const) {
      const r = await call(method, path, { token, body });
      expect(r, `${method} ${path}`).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    }
    // Bob sees his own instance, untouched: still waiting for its signal (the worker runs it as bob).
    expect((await call('GET', `/v1/instances/${bobId}`, { token: bobToken })).body).toMatchObject({ instance_id: bobId, status: 'running', result: null });
  });

  it('unknown and malformed ids are 404s', async () => {
    for (const id of ['0000beef', 'nothex!!', 'ABCDEF01', '123']) {
      expect((await call('GET', `/v1/instances/${id}`, { token: aliceToken })).status).toBe(404);
    }
  });
});

describe('cancel and signal', () => {
  it('POST /v1/instances/:id/cancel', async () => {
    const id = await start(ownerToken, `df.wait_for_signal('never')`);
    await drain();
    const r = await call('POST', `/v1/instances/${id}/cancel`, { token: ownerToken, body: { reason: 'changed my mind' } });
    expect(r).toMatchObject({ status: 200, body: { message: `Instance ${id} cancelled: changed my mind` } });
    expect((await call('GET', `/v1/instances/${id}`, { token: ownerToken })).body.status).toBe('cancelled');
    // Idempotent, empty body allowed.
    expect((await call('POST', `/v1/instances/${id}/cancel`, { token: ownerToken })).status).toBe(200);
    expect(await call('POST', `/v1/instances/${id}/cancel`, { token: ownerToken, body: { reason: 5 } })).toMatchObject({ status: 400, body: { error: { code: 'invalid_body' } } });
    expect(await call('POST', `/v1/instances/${id}/cancel`, { token: ownerToken, body: { why: 'x' } })).toMatchObject({ status: 400 });
    expect(await call('POST', `/v1/instances/${id}/cancel`, { token: ownerToken, raw: '{' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_json' } } });
  });

  it('409 when cancelling a completed instance', async () => {
    const id = await start(ownerToken, `'SELECT 1'`);
    await drain();
    expect(await call('POST', `/v1/instances/${id}/cancel`, { token: ownerToken })).toMatchObject({ status: 409, body: { error: { code: 'instance_finished' } } });
  });

  it('POST /v1/instances/:id/signals/:name delivers the payload', async () => {
    const id = await start(ownerToken, `df.wait_for_signal('approval')`);
    await drain();
    expect((await call('GET', `/v1/instances/${id}`, { token: ownerToken })).body.status).toBe('running');
    const r = await call('POST', `/v1/instances/${id}/signals/approval`, { token: ownerToken, body: { approved: true, by: 'ann' } });
    expect(r).toMatchObject({ status: 200, body: { ok: true } });
    await drain();
    const got = await call('GET', `/v1/instances/${id}`, { token: ownerToken });
    expect(got.body.status).toBe('completed');
    expect(JSON.stringify(got.body.result)).toContain('"approved":true');
    // Finished: no more signals.
    expect(await call('POST', `/v1/instances/${id}/signals/approval`, { token: ownerToken, body: 1 })).toMatchObject({ status: 409, body: { error: { code: 'instance_finished' } } });
  });

  it('signal bodies must be JSON; an empty body is {}', async () => {
    const id = await start(ownerToken, `df.wait_for_signal('x')`);
    expect(await call('POST', `/v1/instances/${id}/signals/x`, { token: ownerToken, raw: 'yes please' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_json' } } });
    expect((await call('POST', `/v1/instances/${id}/signals/x`, { token: ownerToken })).status).toBe(200);
    expect(await t.query('SELECT payload FROM df.signals WHERE instance_id = $1', [id])).toEqual([{ payload: {} }]);
    expect((await call('POST', `/v1/instances/${id}/signals/${'s'.repeat(201)}`, { token: ownerToken, body: {} })).status).toBe(400);
  });
});

describe('an API connected as a role that does not own schema df', () => {
  it('serves static tokens; stored tokens are a logged 500 (only the owner reads token hashes)', async () => {
    const db = createPgDb({ connectionString: t.url(bob), max: 2 });
    try {
      const logged: string[] = [];
      const app = createApp({ db, staticTokens: [{ token: 'bobs-static-token-0123', role: bob }], log: { ...silentLogger, error: (_m, f) => logged.push(String((f?.error as Error)?.message)) } });
      const call2 = client(app);
      expect((await call2('GET', '/v1/instances', { token: 'bobs-static-token-0123' })).status).toBe(200);
      expect(await call2('GET', '/v1/instances', { token: bobToken })).toMatchObject({ status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
      expect(logged[0]).toMatch(/connect as the owner of schema df/);
    } finally {
      await db.end();
    }
  });
});

describe('statement timeout', () => {
  it('a request that runs too long is cancelled by statement_timeout: 503, nothing started', async () => {
    const app = createApp({ db: t.db, staticTokens: [{ token: STATIC, role: OWNER }], statementTimeoutMs: 50 });
    const [{ before }] = await t.query('SELECT count(*)::int AS before FROM df.instances');
    const heavy = `'SELECT 1' ~> `.repeat(2000) + `'SELECT 2'`; // building this envelope takes seconds
    const r = await client(app)('POST', '/v1/instances', { token: STATIC, body: { workflow: heavy } });
    expect(r).toMatchObject({ status: 503, body: { error: { code: 'statement_timeout' } } });
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([{ n: before }]);
  });
});

describe('failures never leak internals', () => {
  const broken: Db = {
    withClient: async () => {
      throw new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2');
    },
    withTransaction: async () => {
      throw new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2');
    },
    end: async () => undefined,
  };
  it('500 internal with a generic message; healthz is a 503', async () => {
    const logged: unknown[] = [];
    const app = createApp({ db: broken, staticTokens: [{ token: STATIC, role: OWNER }], log: { debug() {}, info() {}, warn() {}, error: (...a) => logged.push(a) } });
    const call2 = client(app);
    const r = await call2('GET', '/v1/instances', { token: STATIC });
    expect(r).toEqual({ status: 500, body: { error: { code: 'internal', message: 'internal error' } }, headers: expect.anything() });
    expect(logged).toHaveLength(1);
    expect(await call2('GET', '/healthz')).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });
  });
});
