/**
 * Row-level security on instances, nodes, scopes (named results), events (history), variables and
 * signals (issue 7 item 3, SPEC §6.2 / pg_durable test 15): with steps really run through the runners,
 * role A can neither see, cancel, signal nor read results of role B's instances, from SQL or the REST
 * API; a superuser sees all.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { grantToOwner, useTestDb } from '../helpers/db.ts';
import { engineFor } from '../helpers/engine.ts';
import { client } from '../api/helpers.ts';
import { useRoles, type RoleHandle } from './roles-helpers.ts';

const t = useTestDb();
const role = useRoles(t);
let a: RoleHandle, b: RoleHandle;
let aDone: string, aWaiting: string, bDone: string, bWaiting: string, aFail: string, bFail: string;
let call: ReturnType<typeof client>;
let aToken: string, bToken: string;

const TABLES = ['instances', 'nodes', 'scopes', 'events', 'signals'] as const;
const visible = async (r: RoleHandle, table: string) => {
  const col = table === 'instances' ? 'id' : 'instance_id';
  const rows = await r.query(`SELECT DISTINCT ${col}::text AS id FROM df.${table} WHERE ${col} = ANY($1) ORDER BY 1`, [[aDone, aWaiting, aFail, bDone, bWaiting, bFail]]);
  return rows.map((x) => x.id);
};

beforeAll(async () => {
  a = await role('ra');
  b = await role('rb');
  for (const r of [a, b]) {
    await r.query(`SELECT df.setvar('secret', $1)`, [`${r.name}-secret`]);
  }
  aDone = await a.start(`df.as_op('SELECT current_user::text AS u, df.getvar(''secret'') AS s', 'x') ~> 'SELECT $x AS again'`);
  aWaiting = await a.start(`df.wait_for_signal('go', 600)`);
  bDone = await b.start(`df.as_op('SELECT current_user::text AS u, df.getvar(''secret'') AS s', 'x') ~> 'SELECT $x AS again'`);
  bWaiting = await b.start(`df.wait_for_signal('go', 600)`);
  // A failed step writes history (df.events).
  aFail = await a.start(`'SELECT 1/0'`);
  bFail = await b.start(`'SELECT 1/0'`);
  await engineFor(t).drain();
  await a.query(`SELECT df.signal($1, 'early', '{}')`, [aWaiting]);
  await b.query(`SELECT df.signal($1, 'early', '{}')`, [bWaiting]);
  // The REST API connects as the df owner, which must be a member of each token's role.
  for (const r of [a, b]) await grantToOwner(t, r.id);
  [{ t: aToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['a', a.name]);
  [{ t: bToken }] = await t.query('SELECT df.create_api_token($1, $2) AS t', ['b', b.name]);
  call = client(createApp({ db: t.db }));
});

describe('SQL', () => {
  it('each role ran its own steps as itself, with its own variables', async () => {
    expect(await a.query(`SELECT df.result($1)::jsonb AS r`, [aDone])).toEqual([{ r: { rows: [{ again: a.name }], row_count: 1 } }]);
    expect(await b.query(`SELECT df.result($1)::jsonb AS r`, [bDone])).toEqual([{ r: { rows: [{ again: b.name }], row_count: 1 } }]);
    const [{ out }] = await t.query(`SELECT result::text AS out FROM df.nodes WHERE instance_id = $1 AND result_name = 'x'`, [bDone]);
    expect(JSON.parse(out).rows[0].s).toBe(`${b.name}-secret`);
  });

  it.each(TABLES)('df.%s: a role sees its own rows only; a superuser sees all', async (table) => {
    const expected = (done: string, waiting: string, fail: string) =>
      (table === 'events' ? [fail] : table === 'signals' ? [waiting] : [done, waiting, fail]).sort();
    expect(await visible(a, table)).toEqual(expected(aDone, aWaiting, aFail));
    expect(await visible(b, table)).toEqual(expected(bDone, bWaiting, bFail));
    const col = table === 'instances' ? 'id' : 'instance_id';
    const { rows } = await t.superuser.query(`SELECT count(DISTINCT ${col})::int AS n FROM df.${table} WHERE ${col} = ANY($1)`, [
      [aDone, aWaiting, aFail, bDone, bWaiting, bFail],
    ]);
    expect(rows[0].n).toBe(table === 'events' || table === 'signals' ? 2 : 6);
  });

  it("df.vars: each role's variables are its own", async () => {
    expect(await a.query(`SELECT name, value FROM df.vars`)).toEqual([{ name: 'secret', value: `${a.name}-secret` }]);
    expect(await a.query(`SELECT df.getvar('secret') AS v`)).toEqual([{ v: `${a.name}-secret` }]);
    expect((await t.superuser.query(`SELECT count(*)::int AS n FROM df.vars`)).rows[0].n).toBe(2);
  });

  it("cannot read, cancel or signal another role's instance; the public functions find nothing", async () => {
    expect(await a.query(`SELECT df.status($1) AS s, df.result($1) AS r`, [bDone])).toEqual([{ s: null, r: null }]);
    expect(await a.query(`SELECT count(*)::int AS n FROM df.instance_nodes($1)`, [bDone])).toEqual([{ n: 0 }]);
    expect(await a.query(`SELECT count(*)::int AS n FROM df.instance_events($1)`, [bDone])).toEqual([{ n: 0 }]);
    expect(await a.query(`SELECT count(*)::int AS n FROM df.list_instances() WHERE instance_id IN ($1, $2)`, [bDone, bWaiting])).toEqual([{ n: 0 }]);
    await expect(a.query(`SELECT df.cancel($1)`, [bWaiting])).rejects.toThrow(/not found or access denied/);
    await expect(a.query(`SELECT df.signal($1, 'go', '{}')`, [bWaiting])).rejects.toThrow(/not found or access denied/);
    // Not by writing the tables directly either.
    expect((await a.pool.query(`UPDATE df.instances SET status = 'cancelled' WHERE id = $1`, [bWaiting])).rowCount).toBe(0);
    expect((await a.pool.query(`UPDATE df.nodes SET run_at = now() WHERE instance_id = $1`, [bWaiting])).rowCount).toBe(0);
    await expect(a.query(`INSERT INTO df.signals (instance_id, signal_name, payload, submitted_by) VALUES ($1, 'go', '{}', $2::regrole)`, [bWaiting, b.name])).rejects.toMatchObject({
      code: '42501',
    });
    expect(await b.query(`SELECT df.status($1) AS s`, [bWaiting])).toEqual([{ s: 'running' }]);
    // The owner still can.
    await b.query(`SELECT df.signal($1, 'go', '{"ok":true}')`, [bWaiting]);
    await engineFor(t).drain();
    expect(await b.query(`SELECT df.status($1) AS s`, [bWaiting])).toEqual([{ s: 'completed' }]);
  });

  it('a superuser sees every instance through the public functions', async () => {
    const { rows } = await t.superuser.query(`SELECT count(*)::int AS n FROM df.list_instances(NULL, 1000) WHERE instance_id = ANY($1)`, [
      [aDone, aWaiting, bDone, bWaiting],
    ]);
    expect(rows[0].n).toBe(4);
    expect((await t.superuser.query(`SELECT df.result($1)::jsonb AS r`, [aDone])).rows[0].r).toEqual({ rows: [{ again: a.name }], row_count: 1 });
  });
});

describe('REST API', () => {
  it("another role's instance is a 404 on every route; the owner's is there", async () => {
    for (const [method, path] of [
      ['GET', `/v1/instances/${bDone}`],
      ['GET', `/v1/instances/${bDone}/events`],
      ['GET', `/v1/instances/${bDone}/explain`],
      ['POST', `/v1/instances/${aWaiting}/cancel`],
      ['POST', `/v1/instances/${aWaiting}/signals/go`],
    ] as const) {
      const token = path.includes(bDone) ? aToken : bToken;
      const r = await call(method, path, { token, body: method === 'POST' ? {} : undefined });
      expect([method, path, r.status]).toEqual([method, path, 404]);
    }
    const own = await call('GET', `/v1/instances/${aDone}`, { token: aToken });
    expect(own.status).toBe(200);
    expect(own.body.result).toEqual({ rows: [{ again: a.name }], row_count: 1 });
    const list = await call('GET', '/v1/instances?limit=1000', { token: aToken });
    const ids = (list.body.instances ?? list.body.items ?? list.body).map((x: { id?: string; instance_id?: string }) => x.id ?? x.instance_id);
    expect(ids).toContain(aDone);
    expect(ids).not.toContain(bDone);
    expect(ids).not.toContain(bWaiting);
    // The instance B could not touch is unchanged.
    expect(await a.query(`SELECT df.status($1) AS s`, [aWaiting])).toEqual([{ s: 'running' }]);
  });
});
