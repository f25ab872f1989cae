/**
 * /v1/workflows against the real test database: define (DSL and graph), versions, list and read, start by
 * name with an input the steps read as $input, drop, another role's names invisible, bad bodies.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { useTestDb, grantedRole } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from './helpers.ts';

const t = useTestDb();
let call: ReturnType<typeof client>;
let ownerToken: string, aliceToken: string;

beforeAll(async () => {
  const alice = await grantedRole(t, 'alice');
  [{ t: ownerToken }] = await t.query('SELECT df.create_api_token($1) AS t', ['owner']);
  [{ t: aliceToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['main', alice]);
  call = client(createApp({ db: t.db }));
});

describe('/v1/workflows', () => {
  it('defines versions from DSL and graph JSON, lists and reads them', async () => {
    const a = await call('POST', '/v1/workflows', { token: ownerToken, body: { name: 'orders.sync', workflow: "'SELECT 1 AS one'", description: 'first' } });
    expect(a).toMatchObject({ status: 201, body: { name: 'orders.sync', version: 1 } });
    expect(a.headers.get('Location')).toBe('/v1/workflows/orders.sync');
    const [{ g }] = await t.query(`SELECT ('SELECT 2 AS two' ~> 'SELECT $input.x AS x')::jsonb AS g`);
    const b = await call('POST', '/v1/workflows', { token: ownerToken, body: { name: 'orders.sync', graph: g } });
    expect(b).toMatchObject({ status: 201, body: { version: 2 } });

    const list = await call('GET', '/v1/workflows', { token: ownerToken });
    expect(list.status).toBe(200);
    expect(list.body.workflows).toEqual([{ name: 'orders.sync', latest_version: 2, description: null, created_at: expect.any(String) }]);

    const one = await call('GET', '/v1/workflows/orders.sync', { token: ownerToken });
    expect(one.status).toBe(200);
    expect(one.body.latest_version).toBe(2);
    expect(one.body.graph.node_type).toBe('THEN');
    expect(one.body.versions.map((v: any) => [v.version, v.description])).toEqual([[1, 'first'], [2, null]]);
  });

  it('starts by name; the engine runs it with the input as $input', async () => {
    const r = await call('POST', '/v1/workflows/orders.sync/instances', { token: ownerToken, body: { input: { x: "it's" } } });
    expect(r).toMatchObject({ status: 201, body: { instance_id: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'pending', version: 2 } });
    await engineFor(t).drain();
    const inst = await call('GET', `/v1/instances/${r.body.instance_id}`, { token: ownerToken });
    expect(inst.body).toMatchObject({ status: 'completed', label: 'orders.sync', result: { rows: [{ x: "it's" }] } });

    const pinned = await call('POST', '/v1/workflows/orders.sync/instances', { token: ownerToken, body: { version: 1, label: 'pinned' } });
    expect(pinned).toMatchObject({ status: 201, body: { version: 1 } });
    const empty = await call('POST', '/v1/workflows/orders.sync/instances', { token: ownerToken });
    expect(empty).toMatchObject({ status: 201, body: { version: 2 } });
  });

  it("another role's workflow is a 404 everywhere, and its name is taken (403)", async () => {
    expect(await call('GET', '/v1/workflows', { token: aliceToken })).toMatchObject({ status: 200, body: { workflows: [] } });
    expect(await call('GET', '/v1/workflows/orders.sync', { token: aliceToken })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await call('POST', '/v1/workflows/orders.sync/instances', { token: aliceToken })).toMatchObject({ status: 404 });
    expect(await call('DELETE', '/v1/workflows/orders.sync', { token: aliceToken })).toMatchObject({ status: 404 });
    expect(await call('POST', '/v1/workflows', { token: aliceToken, body: { name: 'orders.sync', workflow: "'SELECT 1'" } })).toMatchObject({
      status: 403,
      body: { error: { code: 'forbidden' } },
    });
  });

  it('bad bodies and workflows are 4xx JSON and store nothing', async () => {
    const bad = [
      [{ name: 'x y', workflow: "'SELECT 1'" }, 400, 'invalid_body'],
      [{ name: 'x', workflow: "'SELECT 1'", graph: {} }, 400, 'invalid_body'],
      [{ name: 'x' }, 400, 'invalid_body'],
      [{ name: 'x', workflow: "'SELECT 1' ~>" }, 422, 'invalid_workflow'],
      [{ name: 'x', graph: { node_type: 'NOPE' } }, 422, 'invalid_workflow'],
      [{ name: 'x', workflow: "'SELECT 1'", extra: 1 }, 400, 'invalid_body'],
    ] as const;
    for (const [body, status, code] of bad) {
      expect(await call('POST', '/v1/workflows', { token: ownerToken, body }), JSON.stringify(body)).toMatchObject({ status, body: { error: { code } } });
    }
    expect(await call('POST', '/v1/workflows', { token: ownerToken, raw: '{"name":' })).toMatchObject({ status: 400, body: { error: { code: 'invalid_json' } } });
    expect(await call('POST', '/v1/workflows/orders.sync/instances', { token: ownerToken, body: { version: 0 } })).toMatchObject({ status: 400 });
    expect(await call('POST', '/v1/workflows/orders.sync/instances', { token: ownerToken, body: { version: 9 } })).toMatchObject({ status: 404 });
    expect(await call('POST', '/v1/workflows', { body: { name: 'x', workflow: "'SELECT 1'" } })).toMatchObject({ status: 401 });
    expect(await t.query(`SELECT name FROM df.workflows WHERE name = 'x'`)).toEqual([]);
  });

  it('DELETE removes every version', async () => {
    expect(await call('DELETE', '/v1/workflows/orders.sync', { token: ownerToken })).toMatchObject({ status: 200, body: { removed: 2 } });
    expect(await call('GET', '/v1/workflows/orders.sync', { token: ownerToken })).toMatchObject({ status: 404 });
  });
});
