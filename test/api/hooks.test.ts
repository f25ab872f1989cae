/**
 * Webhooks against the real test database: POST /hooks/:name with GitHub, Stripe-style and generic
 * signatures (good, bad, missing, expired, future, replayed), redelivery (also concurrent: one
 * instance), unknown hooks, body limits, malformed bodies, the secret never readable back (REST or SQL),
 * /v1/hooks management, and a started instance that the engine runs to completion reading $input.
 */
import { createHmac } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { pruneHistory } from '../../src/engine/maintenance.ts';
import { asRole as asRoleOf, useTestDb, grantedRole } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
const OWNER = inject('pg').owner;
const NOW = Date.UTC(2026, 10, 25, 14, 0, 0);
const T = Math.floor(NOW / 1000);
const GH_SECRET = 'github-secret-0123456789';
let clock = NOW;
let app: ReturnType<typeof createApp>;
let call: ReturnType<typeof client>;
let ownerToken: string, aliceToken: string, alice: string;
let stripeSecret: string, hmacSecret: string;

const hex = (secret: string, data: string) => createHmac('sha256', secret).update(data).digest('hex');
const ghSig = (body: string, secret = GH_SECRET) => `sha256=${hex(secret, body)}`;
const stripeSig = (body: string, t = T, secret = stripeSecret) => `t=${t},v1=${hex(secret, `${t}.${body}`)}`;

/** POSTs a delivery with exactly these headers and body (Content-Type JSON unless given). */
async function deliver(name: string, body: string, headers: Record<string, string> = {}) {
  const res = await app.request(`/hooks/${name}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
  return { status: res.status, body: (await res.json()) as any };
}

/** Runs `sql` as `role` (the owner is a member of the test roles), returning the rows. */
const asRole = <R = any>(role: string, sql: string, params: unknown[] = []) => asRoleOf<R>(t, role, sql, params);
const sqlErrorAs = (role: string, sql: string) => asRole(role, sql).then(
  () => {
    throw new Error(`no error from ${sql}`);
  },
  (e: any) => ({ code: e.code as string, message: e.message as string }),
);

const count = async (sql: string, params: unknown[] = []) => Number((await t.query(`SELECT count(*) AS n FROM (${sql}) q`, params))[0].n);
const hookInstances = (name: string) => count(`SELECT 1 FROM df.instances WHERE label = $1`, [`hook:${name}`]);
const deliveries = (name: string) => count(`SELECT 1 FROM df.hook_deliveries d JOIN df._hooks h ON h.id = d.hook_id WHERE h.name = $1`, [name]);

beforeAll(async () => {
  alice = await grantedRole(t, 'alice');
  [{ t: ownerToken }] = await t.query('SELECT df.create_api_token($1) AS t', ['owner']);
  [{ t: aliceToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', alice]);
  await t.query('CREATE TABLE pushes (ref text NOT NULL, n int NOT NULL)');
  await t.query(`SELECT df.define_workflow('on_push', $1)`, ['INSERT INTO pushes (ref, n) VALUES ($input.ref, $input.n) RETURNING ref']);
  await t.query(`SELECT df.define_workflow('noop', 'SELECT 1 AS one')`);
  await t.query(`SELECT df.create_hook('gh', 'on_push', 'github', $1)`, [GH_SECRET]);
  [{ s: stripeSecret }] = await t.query(`SELECT df.create_hook('pay', 'noop', 'stripe') AS s`);
  [{ s: hmacSecret }] = await t.query(`SELECT df.create_hook('generic', 'noop', 'hmac', NULL, 300, 64) AS s`);
  app = createApp({ db: t.db, now: () => clock });
  call = client(app);
});

describe('GitHub scheme', () => {
  it('a good signature starts the workflow with the body as input and answers 202 at once', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', n: 1 });
    const r = await deliver('gh', body, { 'X-Hub-Signature-256': ghSig(body), 'X-GitHub-Delivery': 'd-1' });
    expect(r).toEqual({ status: 202, body: { instance_id: expect.stringMatching(/^[0-9a-f]{8}$/), redelivered: false } });
    const [row] = await t.query('SELECT label, input, submitted_by::text AS owner, status FROM df.instances WHERE id = $1', [r.body.instance_id]);
    // Nothing ran inside the request: the instance is only started.
    expect(row).toEqual({ label: 'hook:gh', input: { ref: 'refs/heads/main', n: 1 }, owner: OWNER, status: 'pending' });
    expect(await count('SELECT 1 FROM pushes')).toBe(0);
  });

  it('the started instance runs to completion; its step reads $input fields', async () => {
    await engineFor(t).drain();
    expect(await t.query('SELECT ref, n FROM pushes')).toEqual([{ ref: 'refs/heads/main', n: 1 }]);
    const [{ id }] = await t.query(`SELECT instance_id AS id FROM df.hook_deliveries WHERE delivery_id = 'd-1'`);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
  });

  it('a redelivery (same X-GitHub-Delivery) starts nothing and returns the first instance id', async () => {
    const before = await hookInstances('gh');
    const body = JSON.stringify({ ref: 'refs/heads/main', n: 1 });
    const [{ id }] = await t.query(`SELECT instance_id AS id FROM df.hook_deliveries WHERE delivery_id = 'd-1'`);
    const r = await deliver('gh', body, { 'X-Hub-Signature-256': ghSig(body), 'X-GitHub-Delivery': 'd-1' });
    expect(r).toEqual({ status: 200, body: { instance_id: id, redelivered: true } });
    expect(await hookInstances('gh')).toBe(before);
    expect(await deliveries('gh')).toBe(1);
  });

  it('concurrent deliveries of one id start exactly one instance, and all get its id', async () => {
    const before = await hookInstances('gh');
    const body = JSON.stringify({ ref: 'refs/heads/race', n: 2 });
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => deliver('gh', body, { 'X-Hub-Signature-256': ghSig(body), 'X-GitHub-Delivery': 'd-race' })),
    );
    const ids = new Set(replies.map((r) => r.body.instance_id));
    expect(ids.size).toBe(1);
    expect(replies.filter((r) => r.status === 202)).toHaveLength(1);
    expect(replies.filter((r) => r.status === 200 && r.body.redelivered)).toHaveLength(5);
    expect(await hookInstances('gh')).toBe(before + 1);
    await engineFor(t).drain();
    expect(await count(`SELECT 1 FROM pushes WHERE ref = 'refs/heads/race'`)).toBe(1);
  });

  it('a bad or missing signature is 401 and starts nothing', async () => {
    const before = await hookInstances('gh');
    const body = JSON.stringify({ ref: 'x', n: 3 });
    expect(await deliver('gh', body, { 'X-Hub-Signature-256': ghSig(body, 'wrong-secret-0123456789'), 'X-GitHub-Delivery': 'd-bad' })).toEqual({
      status: 401,
      body: { error: { code: 'invalid_signature', message: 'X-Hub-Signature-256 does not match the body' } },
    });
    expect(await deliver('gh', body, { 'X-Hub-Signature-256': ghSig(`${body} `) })).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
    expect(await deliver('gh', body, { 'X-Hub-Signature-256': 'sha256=nothex' })).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
    expect(await deliver('gh', body, {})).toEqual({ status: 401, body: { error: { code: 'missing_signature', message: 'missing X-Hub-Signature-256 header' } } });
    expect(await hookInstances('gh')).toBe(before);
    expect(await count(`SELECT 1 FROM df.hook_deliveries WHERE delivery_id = 'd-bad'`)).toBe(0);
  });
});

describe('Stripe-style scheme', () => {
  const event = (id: string) => JSON.stringify({ id, type: 'invoice.paid', data: { amount: 100 } });

  it('a fresh signature starts the workflow; the event id is the delivery id', async () => {
    const body = event('evt_1');
    const r = await deliver('pay', body, { 'Stripe-Signature': stripeSig(body) });
    expect(r).toMatchObject({ status: 202, body: { redelivered: false } });
    expect(await t.query(`SELECT delivery_id, instance_id FROM df.hook_deliveries WHERE instance_id = $1`, [r.body.instance_id])).toEqual([
      { delivery_id: 'evt_1', instance_id: r.body.instance_id },
    ]);
  });

  it('a replay of the same signed request within the window returns the first instance, counted once', async () => {
    const body = event('evt_1');
    const before = await hookInstances('pay');
    const [{ id }] = await t.query(`SELECT instance_id AS id FROM df.hook_deliveries WHERE delivery_id = 'evt_1'`);
    clock = NOW + 120_000;
    try {
      expect(await deliver('pay', body, { 'Stripe-Signature': stripeSig(body) })).toEqual({ status: 200, body: { instance_id: id, redelivered: true } });
      // Stripe's own retry: a new timestamp and signature, the same event.
      expect(await deliver('pay', body, { 'Stripe-Signature': stripeSig(body, T + 120) })).toMatchObject({ status: 200, body: { instance_id: id } });
    } finally {
      clock = NOW;
    }
    expect(await hookInstances('pay')).toBe(before);
    expect(await count(`SELECT 1 FROM df.hook_deliveries WHERE delivery_id = 'evt_1'`)).toBe(1);
  });

  it('a stale timestamp is 401 signature_expired; one too far ahead is 401 timestamp_in_future', async () => {
    const before = await hookInstances('pay');
    const body = event('evt_2');
    clock = NOW + 301_000;
    try {
      expect(await deliver('pay', body, { 'Stripe-Signature': stripeSig(body) })).toEqual({
        status: 401,
        body: { error: { code: 'signature_expired', message: 'signature timestamp is 301 s old; the tolerance is 300 s' } },
      });
    } finally {
      clock = NOW;
    }
    expect(await deliver('pay', body, { 'Stripe-Signature': stripeSig(body, T + 301) })).toMatchObject({
      status: 401,
      body: { error: { code: 'timestamp_in_future' } },
    });
    expect(await deliver('pay', body, { 'Stripe-Signature': stripeSig(body, T, 'whsec_not_the_secret') })).toMatchObject({
      status: 401,
      body: { error: { code: 'invalid_signature' } },
    });
    expect(await deliver('pay', body, { 'X-Hub-Signature-256': ghSig(body, stripeSecret) })).toMatchObject({
      status: 401,
      body: { error: { code: 'missing_signature' } },
    });
    expect(await hookInstances('pay')).toBe(before);
  });
});

describe('generic hmac scheme and limits', () => {
  const sig = (body: string) => `sha256=${hex(hmacSecret, body)}`;

  it('without a delivery id every verified delivery starts a new instance; X-Delivery-Id dedupes', async () => {
    const before = await hookInstances('generic');
    const a = await deliver('generic', '[1]', { 'X-Signature-256': sig('[1]') });
    const b = await deliver('generic', '[1]', { 'X-Signature-256': sig('[1]') });
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.instance_id).not.toBe(b.body.instance_id);
    const c = await deliver('generic', '[2]', { 'X-Signature-256': sig('[2]'), 'X-Delivery-Id': 'x-1' });
    const d = await deliver('generic', '[2]', { 'X-Signature-256': sig('[2]'), 'X-Delivery-Id': 'x-1' });
    expect([c.status, d.status]).toEqual([202, 200]);
    expect(d.body.instance_id).toBe(c.body.instance_id);
    expect(await hookInstances('generic')).toBe(before + 3);
  });

  it('a body over the hook limit is 413, by Content-Length or by counting', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(100) });
    expect(await deliver('generic', big, { 'X-Signature-256': sig(big) })).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(await deliver('generic', big, { 'X-Signature-256': sig(big), 'Content-Length': String(big.length) })).toMatchObject({ status: 413 });
    const fits = JSON.stringify({ pad: 'x'.repeat(64 - 10) });
    expect(fits.length).toBe(64);
    expect(await deliver('generic', fits, { 'X-Signature-256': sig(fits) })).toMatchObject({ status: 202 });
  });

  it('a signed body that is not a JSON object or array is 400; a non-JSON Content-Type is 415', async () => {
    const before = await hookInstances('generic');
    for (const body of ['{"a":', '42', '"text"', 'null', '{"a":"\\u0000"}']) {
      expect(await deliver('generic', body, { 'X-Signature-256': sig(body) }), body).toMatchObject({ status: 400, body: { error: { code: 'invalid_json' } } });
    }
    expect(await deliver('generic', '[1]', { 'X-Signature-256': sig('[1]'), 'Content-Type': 'application/x-www-form-urlencoded' })).toMatchObject({
      status: 415,
      body: { error: { code: 'unsupported_media_type' } },
    });
    expect(await deliver('generic', '[1]', { 'X-Signature-256': sig('[1]'), 'Content-Type': 'application/vnd.api+json; charset=utf-8' })).toMatchObject({ status: 202 });
    expect(await hookInstances('generic')).toBe(before + 1);
  });

  it('a malformed body with a bad signature is 401: the signature is checked before parsing', async () => {
    expect(await deliver('generic', '{"a":', { 'X-Signature-256': sig('{}') })).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
  });

  it('an unknown hook is 404 and says nothing else', async () => {
    const body = '{}';
    for (const name of ['nope', 'bad%20name', '..']) {
      const r = await deliver(name, body, { 'X-Hub-Signature-256': ghSig(body) });
      expect(r.status, name).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
    expect((await deliver('nope', body)).body).toEqual({ error: { code: 'not_found', message: 'no webhook named "nope"' } });
  });

  it("a hook whose owner the API may not act as is a 403 that names no role", async () => {
    const carol = t.role('carol');
    await t.superuser.query(`CREATE ROLE ${carol} LOGIN`);
    await t.query('SELECT df.grant_usage($1)', [carol]);
    // Not GRANTed to the API's connecting role: SET ROLE to it is refused.
    const c = await t.superuser.connect();
    let s: string;
    try {
      await c.query(`SET ROLE ${carol}`);
      await c.query(`SELECT df.define_workflow('carol_flow', 'SELECT 1')`);
      [{ s }] = (await c.query(`SELECT df.create_hook('carol-hook', 'carol_flow', 'hmac') AS s`)).rows;
    } finally {
      await c.query('RESET ROLE');
      c.release();
    }
    const r = await deliver('carol-hook', '{}', { 'X-Signature-256': `sha256=${hex(s, '{}')}` });
    expect(r).toEqual({ status: 403, body: { error: { code: 'forbidden', message: 'webhook "carol-hook" cannot start its workflow; see the server log' } } });
    expect(await deliveries('carol-hook')).toBe(0);
  });

  it('a dropped workflow is a 404 workflow_not_found and records no delivery', async () => {
    await t.query(`SELECT df.define_workflow('temp', 'SELECT 1')`);
    const [{ s }] = await t.query(`SELECT df.create_hook('temp-hook', 'temp', 'hmac') AS s`);
    await t.query(`SELECT df.drop_workflow('temp')`);
    const r = await deliver('temp-hook', '{}', { 'X-Signature-256': `sha256=${hex(s, '{}')}`, 'X-Delivery-Id': 't-1' });
    expect(r).toMatchObject({ status: 404, body: { error: { code: 'workflow_not_found' } } });
    expect(await deliveries('temp-hook')).toBe(0);
  });
});

describe('the secret is never readable back', () => {
  let secret: string;

  beforeAll(async () => {
    await asRole(alice, `SELECT df.define_workflow('alice_flow', 'SELECT $input.who AS who')`);
    const r = await call('POST', '/v1/hooks', { token: aliceToken, body: { name: 'alice-hook', workflow: 'alice_flow', scheme: 'hmac' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secret = r.body.secret;
  });

  it('the 201 answer carries it once; it signs deliveries, which start instances as the hook owner', async () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const body = '{"who":"alice"}';
    const r = await deliver('alice-hook', body, { 'X-Signature-256': `sha256=${hex(secret, body)}` });
    expect(r.status).toBe(202);
    expect(await t.query('SELECT submitted_by::text AS owner FROM df.instances WHERE id = $1', [r.body.instance_id])).toEqual([{ owner: alice }]);
  });

  it('list and get never contain it', async () => {
    const list = await call('GET', '/v1/hooks', { token: aliceToken });
    expect(list.status).toBe(200);
    expect(list.body.hooks).toEqual([
      {
        name: 'alice-hook',
        url: '/hooks/alice-hook',
        workflow: 'alice_flow',
        scheme: 'hmac',
        tolerance_seconds: 300,
        max_body_bytes: 1048576,
        created_at: expect.any(String),
        secret_rotated_at: null,
        deliveries: 1,
        last_delivery_at: expect.any(String),
      },
    ]);
    const one = await call('GET', '/v1/hooks/alice-hook', { token: aliceToken });
    expect(one.status).toBe(200);
    expect(one.body.recent_deliveries).toEqual([{ delivery_id: null, instance_id: expect.any(String), received_at: expect.any(String) }]);
    for (const r of [list, one]) expect(JSON.stringify(r.body)).not.toContain(secret.slice(6));
    expect(JSON.stringify(await asRole(alice, 'SELECT * FROM df.list_hooks()'))).not.toContain(secret.slice(6));
  });

  it('the owning role cannot read it by any query (42501), nor see other roles’ hooks', async () => {
    for (const sql of [
      'SELECT secret FROM df._hooks',
      'SELECT * FROM df._hooks',
      `SELECT 1 FROM df._hooks WHERE secret LIKE 'whsec%'`,
      `UPDATE df._hooks SET secret = secret || 'x'`,
      `UPDATE df._hooks SET secret_rotated_at = now() WHERE name = 'alice-hook' RETURNING secret`,
      `SELECT * FROM df._hook_for_delivery('alice-hook')`,
    ]) {
      expect((await sqlErrorAs(alice, sql)).code, sql).toBe('42501');
    }
    expect(await asRole(alice, 'SELECT name FROM df.list_hooks()')).toEqual([{ name: 'alice-hook' }]);
    expect(await asRole(alice, 'SELECT name FROM df._hooks ORDER BY name')).toEqual([{ name: 'alice-hook' }]);
    // The API's connecting role (the owner of schema df) is the one that reads it.
    expect(await t.query(`SELECT secret FROM df._hook_for_delivery('alice-hook')`)).toEqual([{ secret }]);
  });

  it('df.grant_usage grants the hook tables (never the secret column) and df.revoke_usage takes them back', async () => {
    const bob = t.role('bob');
    await t.superuser.query(`CREATE ROLE ${bob} LOGIN`);
    await t.superuser.query(`GRANT ${bob} TO ${OWNER}`);
    expect((await sqlErrorAs(bob, 'SELECT 1 FROM df.list_hooks()')).code).toBe('42501');
    await t.query('SELECT df.grant_usage($1)', [bob]);
    expect(await asRole(bob, 'SELECT name FROM df.list_hooks()')).toEqual([]);
    expect(await asRole(bob, 'SELECT count(*)::int AS n FROM df.hook_deliveries')).toEqual([{ n: 0 }]);
    expect((await sqlErrorAs(bob, 'SELECT secret FROM df._hooks')).code).toBe('42501');
    const [priv] = await t.query(
      `SELECT has_function_privilege($1, 'df._make_runner(regrole)', 'EXECUTE') AS base,
              has_column_privilege($1, 'df._hooks', 'secret', 'SELECT') AS secret,
              has_column_privilege($1, 'df._hooks', 'secret', 'UPDATE') AS secret_update`,
      [bob],
    );
    expect(priv).toEqual({ base: false, secret: false, secret_update: true });
    await t.query('SELECT df.revoke_usage($1)', [bob]);
    expect((await sqlErrorAs(bob, 'SELECT name FROM df._hooks')).code).toBe('42501');
    expect((await sqlErrorAs(bob, 'SELECT 1 FROM df.hook_deliveries')).code).toBe('42501');
  });

  it('a delivery row can only name one of the caller’s own hooks', async () => {
    const [{ id: ghId }] = await t.query(`SELECT id FROM df._hooks WHERE name = 'gh'`);
    const [{ i }] = await asRole(alice, `SELECT df.start('SELECT 1') AS i`);
    expect((await sqlErrorAs(alice, `INSERT INTO df.hook_deliveries (hook_id, delivery_id, instance_id) VALUES (${ghId}, 'forged', '${i}')`)).code).toBe('42501');
  });

  it('rotate: the old secret stops working, the new one works; only the rotate answer shows it', async () => {
    const r = await call('POST', '/v1/hooks/alice-hook/rotate', { token: aliceToken });
    expect(r).toMatchObject({ status: 200, body: { name: 'alice-hook', secret: expect.stringMatching(/^whsec_/) } });
    expect(r.body.secret).not.toBe(secret);
    const body = '{"who":"again"}';
    expect((await deliver('alice-hook', body, { 'X-Signature-256': `sha256=${hex(secret, body)}` })).status).toBe(401);
    expect((await deliver('alice-hook', body, { 'X-Signature-256': `sha256=${hex(r.body.secret, body)}` })).status).toBe(202);
    const chosen = await call('POST', '/v1/hooks/alice-hook/rotate', { token: aliceToken, body: { secret: 'my-own-secret-0123456789' } });
    expect(chosen.body.secret).toBe('my-own-secret-0123456789');
    expect((await call('GET', '/v1/hooks/alice-hook', { token: aliceToken })).body.secret_rotated_at).toEqual(expect.any(String));
  });
});

describe('/v1/hooks management', () => {
  it('validates: bad names, schemes and secrets are 400; an unknown workflow 422; a taken name 409', async () => {
    const bad = [
      [{ name: 'a b', workflow: 'noop', scheme: 'hmac' }, 400, 'invalid_body'],
      [{ name: 'x', workflow: 'noop', scheme: 'sha1' }, 400, 'invalid_body'],
      [{ name: 'x', workflow: 'noop', scheme: 'hmac', secret: 'short' }, 400, 'invalid_body'],
      [{ name: 'x', workflow: 'noop', scheme: 'hmac', tolerance_seconds: 0 }, 400, 'invalid_body'],
      [{ name: 'x', workflow: 'nope', scheme: 'hmac' }, 422, 'workflow_not_found'],
      [{ name: 'gh', workflow: 'noop', scheme: 'hmac' }, 409, 'conflict'],
    ] as const;
    for (const [body, status, code] of bad) {
      expect(await call('POST', '/v1/hooks', { token: ownerToken, body }), JSON.stringify(body)).toMatchObject({ status, body: { error: { code } } });
    }
    expect(await call('POST', '/v1/hooks', { body: { name: 'x', workflow: 'noop', scheme: 'hmac' } })).toMatchObject({ status: 401 });
    expect(await t.query(`SELECT name FROM df._hooks WHERE name = 'x'`)).toEqual([]);
  });

  it("another role's hooks and workflows are a 404 / 422 to manage (the owner of schema df sees all)", async () => {
    expect(await call('GET', '/v1/hooks/gh', { token: aliceToken })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await call('POST', '/v1/hooks/gh/rotate', { token: aliceToken })).toMatchObject({ status: 404 });
    expect(await call('DELETE', '/v1/hooks/gh', { token: aliceToken })).toMatchObject({ status: 404 });
    expect(await call('POST', '/v1/hooks', { token: aliceToken, body: { name: 'y', workflow: 'noop', scheme: 'hmac' } })).toMatchObject({
      status: 422,
      body: { error: { code: 'workflow_not_found' } },
    });
    expect((await call('GET', '/v1/hooks', { token: aliceToken })).body.hooks.map((h: any) => h.name)).toEqual(['alice-hook']);
    expect((await call('GET', '/v1/hooks', { token: ownerToken })).body.hooks.map((h: any) => h.name)).toEqual(['alice-hook', 'carol-hook', 'generic', 'gh', 'pay', 'temp-hook']);
  });

  it('create with options, then DELETE: deliveries go, instances stay, the URL is a 404', async () => {
    const r = await call('POST', '/v1/hooks', {
      token: ownerToken,
      body: { name: 'stripe.v2', workflow: 'noop', scheme: 'stripe', secret: 'whsec_chosen_secret_0000', tolerance_seconds: 600, max_body_bytes: 4096 },
    });
    expect(r).toMatchObject({ status: 201, body: { name: 'stripe.v2', secret: 'whsec_chosen_secret_0000', tolerance_seconds: 600, max_body_bytes: 4096, deliveries: 0 } });
    expect(r.headers.get('Location')).toBe('/v1/hooks/stripe.v2');
    const body = '{"id":"evt_x"}';
    const ok = await deliver('stripe.v2', body, { 'Stripe-Signature': stripeSig(body, T - 500, 'whsec_chosen_secret_0000') });
    expect(ok.status).toBe(202);
    expect(await call('DELETE', '/v1/hooks/stripe.v2', { token: ownerToken })).toMatchObject({ status: 200, body: { ok: true } });
    expect(await count(`SELECT 1 FROM df.instances WHERE id = $1`, [ok.body.instance_id])).toBe(1);
    expect(await count(`SELECT 1 FROM df.hook_deliveries WHERE instance_id = $1`, [ok.body.instance_id])).toBe(0);
    expect((await deliver('stripe.v2', body, { 'Stripe-Signature': stripeSig(body, T, 'whsec_chosen_secret_0000') })).status).toBe(404);
    expect(await call('DELETE', '/v1/hooks/stripe.v2', { token: ownerToken })).toMatchObject({ status: 404 });
  });

  it('pruning an instance prunes its delivery record', async () => {
    const [{ id }] = await t.query(`SELECT instance_id AS id FROM df.hook_deliveries WHERE delivery_id = 'd-1'`);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    await t.db.withClient((c) => pruneHistory(c, { retentionDays: 0, keep: 10_000, batch: 10_000 }));
    expect(await count(`SELECT 1 FROM df.instances WHERE id = $1`, [id])).toBe(0);
    expect(await count(`SELECT 1 FROM df.hook_deliveries WHERE delivery_id = 'd-1'`)).toBe(0);
  });

  it('the OpenAPI document lists the hook routes', async () => {
    const doc = await call('GET', '/v1/openapi.json');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/hooks/{name}', '/v1/hooks', '/v1/hooks/{name}', '/v1/hooks/{name}/rotate']));
  });
});
