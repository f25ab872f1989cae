/**
 * Named workflows (df.define_workflow / df.start_workflow / df.drop_workflow): versions, the start input
 * read as `$input`, ownership of names across roles, and validation that writes nothing on failure.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { asRole as asRoleOf, useTestDb, grantedRole } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';

const t = useTestDb();
const OWNER = inject('pg').owner;
let alice: string;

/** Runs `sql` as `role` (the owner is a member of the test roles), returning the rows. */
const asRole = <R = any>(role: string, sql: string, params: unknown[] = []) => asRoleOf<R>(t, role, sql, params);

const drain = () => engineFor(t).drain();

beforeAll(async () => {
  alice = await grantedRole(t, 'alice');
  await t.query('CREATE TABLE seen (v text)');
});

describe('define', () => {
  it('stores versions 1, 2, … of the validated envelope', async () => {
    expect((await t.query(`SELECT df.define_workflow('versions', 'SELECT 1') AS v`))[0].v).toBe(1);
    expect((await t.query(`SELECT df.define_workflow('versions', 'SELECT 1' ~> 'SELECT 2', 'two steps') AS v`))[0].v).toBe(2);
    const rows = await t.query(`SELECT version, description, owner::text AS owner, graph::jsonb ->> 'node_type' AS root
                                  FROM df.workflows WHERE name = 'versions' ORDER BY version`);
    expect(rows).toEqual([
      { version: 1, description: null, owner: OWNER, root: 'SQL' },
      { version: 2, description: 'two steps', owner: OWNER, root: 'THEN' },
    ]);
  });

  it('rejects a bad graph or name and writes nothing', async () => {
    await expect(t.query(`SELECT df.define_workflow('bad', '{"node_type":"NOPE"}')`)).rejects.toMatchObject({ code: 'PF001' });
    await expect(t.query(`SELECT df.define_workflow('has space', 'SELECT 1')`)).rejects.toMatchObject({
      code: '22023',
      message: expect.stringContaining('invalid workflow name'),
    });
    await expect(t.query(`SELECT df.define_workflow('nul', NULL)`)).rejects.toMatchObject({ code: '22004' });
    expect(await t.query(`SELECT name FROM df.workflows WHERE name IN ('bad', 'has space', 'nul')`)).toEqual([]);
  });

  it('a name belongs to the role that defined it first', async () => {
    await t.query(`SELECT df.define_workflow('mine', 'SELECT 1')`);
    await expect(asRole(alice, `SELECT df.define_workflow('mine', 'SELECT 2')`)).rejects.toMatchObject({
      code: '42501',
      message: 'workflow "mine" belongs to another role',
    });
    // Invisible to alice (RLS), so starting or dropping it is "does not exist".
    expect(await asRole(alice, `SELECT name FROM df.workflows WHERE name = 'mine'`)).toEqual([]);
    await expect(asRole(alice, `SELECT df.start_workflow('mine')`)).rejects.toMatchObject({ code: 'P0002' });
    await expect(asRole(alice, `SELECT df.drop_workflow('mine')`)).rejects.toMatchObject({ code: 'P0002' });
    expect(await t.query(`SELECT count(*)::int AS n FROM df.workflows WHERE name = 'mine'`)).toEqual([{ n: 1 }]);
  });
});

describe('start by name', () => {
  it('steps read the input as $input, $input.field and $input?', async () => {
    await t.query(`SELECT df.define_workflow('greet',
      'INSERT INTO seen VALUES ($input.who) RETURNING v' ~> 'SELECT $input.n::int + 1 AS next, $input AS whole')`);
    const [{ id }] = await t.query(`SELECT df.start_workflow('greet', '{"who":"O''Brien; DROP TABLE seen --","n":41}') AS id`);
    await drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed' });
    const [{ r }] = await t.query('SELECT df.result($1)::jsonb AS r', [id]);
    expect(r.rows[0].next).toBe(42);
    expect(JSON.parse(r.rows[0].whole)).toEqual({ who: "O'Brien; DROP TABLE seen --", n: 41 });
    expect(await t.query('SELECT v FROM seen')).toEqual([{ v: "O'Brien; DROP TABLE seen --" }]);
    // The label defaults to the workflow name, so df.list_instances groups runs by workflow.
    expect((await t.query('SELECT label FROM df.instances WHERE id = $1', [id]))[0].label).toBe('greet');
  });

  it('without an input, $input is {}', async () => {
    await t.query(`SELECT df.define_workflow('noinput', 'SELECT $input AS whole')`);
    const [{ id }] = await t.query(`SELECT df.start_workflow('noinput', label => 'x') AS id`);
    await drain();
    const [{ r }] = await t.query('SELECT df.result($1)::jsonb AS r', [id]);
    expect(r.rows[0].whole).toBe('{}');
    expect((await t.query('SELECT label FROM df.instances WHERE id = $1', [id]))[0].label).toBe('x');
  });

  it('a node named input shadows the start input', async () => {
    await t.query(`SELECT df.define_workflow('shadow', ('SELECT ''node'' AS who' |=> 'input') ~> 'SELECT $input.who AS who')`);
    const [{ id }] = await t.query(`SELECT df.start_workflow('shadow', '{"who":"start"}') AS id`);
    await drain();
    const [{ r }] = await t.query('SELECT df.result($1)::jsonb AS r', [id]);
    expect(r.rows[0].who).toBe('node');
  });

  it('a new version or a drop never changes a running instance; version picks an older one', async () => {
    await t.query(`SELECT df.define_workflow('evolving', 'SELECT ''v1'' AS v')`);
    const [{ id: first }] = await t.query(`SELECT df.start_workflow('evolving') AS id`);
    await t.query(`SELECT df.define_workflow('evolving', 'SELECT ''v2'' AS v')`);
    const [{ id: second }] = await t.query(`SELECT df.start_workflow('evolving') AS id`);
    const [{ id: pinned }] = await t.query(`SELECT df.start_workflow('evolving', version => 1) AS id`);
    expect((await t.query(`SELECT df.drop_workflow('evolving') AS n`))[0].n).toBe(2);
    await drain();
    const results = await t.query(
      `SELECT id, (df.result(id)::jsonb -> 'rows' -> 0 ->> 'v') AS v FROM df.instances WHERE id = ANY($1) ORDER BY id`,
      [[first, second, pinned]],
    );
    const byId = Object.fromEntries(results.map((r: any) => [r.id, r.v]));
    expect(byId).toEqual({ [first]: 'v1', [second]: 'v2', [pinned]: 'v1' });
    await expect(t.query(`SELECT df.start_workflow('evolving')`)).rejects.toMatchObject({ code: 'P0002' });
  });

  it('unknown names and versions are P0002 and start nothing', async () => {
    const before = (await t.query('SELECT count(*)::int AS n FROM df.instances'))[0].n;
    await expect(t.query(`SELECT df.start_workflow('never-defined')`)).rejects.toMatchObject({
      code: 'P0002',
      message: 'workflow "never-defined" does not exist',
    });
    await t.query(`SELECT df.define_workflow('one', 'SELECT 1')`);
    await expect(t.query(`SELECT df.start_workflow('one', version => 7)`)).rejects.toMatchObject({
      code: 'P0002',
      message: 'workflow "one" has no version 7',
    });
    expect((await t.query('SELECT count(*)::int AS n FROM df.instances'))[0].n).toBe(before);
  });

  it('starts as current_user, in the caller\'s transaction', async () => {
    await asRole(alice, `SELECT df.define_workflow('alices', 'SELECT current_user::text AS u')`);
    const [{ id }] = await asRole(alice, `SELECT df.start_workflow('alices', '[1,2]') AS id`);
    expect((await t.query('SELECT submitted_by::text AS o, input FROM df.instances WHERE id = $1', [id]))[0]).toEqual({
      o: alice,
      input: [1, 2],
    });
    // Rolled back with the caller: no instance.
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query(`SELECT df.start_workflow('one') AS id`);
      await c.query('ROLLBACK');
      expect((await t.query('SELECT count(*)::int AS n FROM df.instances WHERE id = $1', [rows[0].id]))[0].n).toBe(0);
    } finally {
      c.release();
    }
  });
});
