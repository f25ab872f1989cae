/**
 * df.resume and df.restart (migrations/*_resume.sql) in SQL: the rows they change, their errors and
 * who may call them. What the engine does with a resumed instance: test/engine/resume.test.ts.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const pools: Record<string, pg.Pool> = {};

/** A role set up by df.grant_usage, as an operator would. */
async function createUser(base: string) {
  const role = t.role(base);
  await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await t.query(`SELECT df.grant_usage($1)`, [role]);
  pools[base] = new pg.Pool({ connectionString: t.url(role), max: 2 });
  return role;
}

beforeAll(async () => {
  await createUser('alice');
  await createUser('bob');
});
afterAll(async () => {
  for (const p of Object.values(pools)) await p.end();
});

async function error(pool: pg.Pool, sql: string, params: unknown[] = []) {
  try {
    await pool.query(sql, params);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error(`no error from ${sql}`);
}

/** Alice's instance of a two-step chain, as the engine leaves it when its second step failed. */
async function failed(label: string | null = null): Promise<string> {
  await pools.alice.query(`SELECT df.setvar('region', 'eu')`);
  const { rows } = await pools.alice.query(`SELECT df.start('SELECT 1' ~> 'SELECT 2', $1) AS id`, [label]);
  const id = rows[0].id as string;
  await t.query(
    `UPDATE df.nodes n SET run_at = NULL, status = CASE WHEN n.node_type = 'SQL' AND n.query = 'SELECT 1' THEN 'completed' ELSE 'failed' END,
            result = CASE WHEN n.query = 'SELECT 1' THEN '1'::jsonb ELSE '"boom"'::jsonb END, attempts = 1
      WHERE n.instance_id = $1`,
    [id],
  );
  await t.query(`UPDATE df.instances SET status = 'failed', output = 'boom' WHERE id = $1`, [id]);
  return id;
}

const instance = async (id: string) => (await t.query(`SELECT status, output, label FROM df.instances WHERE id = $1`, [id]))[0];
const queued = async (id: string) =>
  (await t.query(`SELECT n.id = i.root_node AS root FROM df.nodes n JOIN df.instances i ON i.id = n.instance_id WHERE n.instance_id = $1 AND n.run_at IS NOT NULL`, [id])).map((r) => r.root);

describe('df.resume', () => {
  it('flips a failed instance to running and makes its root claimable; the rows of its nodes stay', async () => {
    const id = await failed();
    const before = await t.query(`SELECT id, status, result, attempts FROM df.nodes WHERE instance_id = $1 ORDER BY id`, [id]);
    expect((await pools.alice.query(`SELECT df.resume($1) AS m`, [id])).rows).toEqual([{ m: `Instance ${id} resumed` }]);
    expect(await instance(id)).toMatchObject({ status: 'running', output: 'boom' });
    expect(await queued(id)).toEqual([true]);
    expect(await t.query(`SELECT id, status, result, attempts FROM df.nodes WHERE instance_id = $1 ORDER BY id`, [id])).toEqual(before);
  });

  it.each(['pending', 'running', 'completed', 'cancelled'])('refuses a %s instance with PF020 and changes nothing', async (status) => {
    const id = await failed();
    await t.query(`UPDATE df.instances SET status = $2 WHERE id = $1`, [id, status]);
    expect(await error(pools.alice, `SELECT df.resume($1)`, [id])).toEqual({
      code: 'PF020',
      message: `Instance ${id} is ${status}: only a failed instance can be resumed`,
    });
    expect(await instance(id)).toMatchObject({ status });
    expect(await queued(id)).toEqual([]);
  });

  it('refuses a second resume while the first is pending', async () => {
    const id = await failed();
    await pools.alice.query(`SELECT df.resume($1)`, [id]);
    expect((await error(pools.alice, `SELECT df.resume($1)`, [id])).code).toBe('PF020');
  });

  it('an unknown or empty id is an error', async () => {
    expect(await error(pools.alice, `SELECT df.resume('00000000')`)).toEqual({ code: 'P0002', message: 'Instance not found or access denied: 00000000' });
    expect((await error(pools.alice, `SELECT df.resume('')`)).code).toBe('22023');
  });

  it('another role cannot resume the instance, not even one that bypasses row-level security', async () => {
    const id = await failed();
    expect(await error(pools.bob, `SELECT df.resume($1)`, [id])).toEqual({ code: 'P0002', message: `Instance not found or access denied: ${id}` });
    expect((await error(t.owner, `SELECT df.resume($1)`, [id])).code).toBe('P0002');
    expect(await instance(id)).toMatchObject({ status: 'failed' });
    expect(await queued(id)).toEqual([]);
  });
});

describe('df.restart', () => {
  it('starts a new instance with the same graph, variables and label; the original stays', async () => {
    const id = await failed('nightly');
    const { rows } = await pools.alice.query(`SELECT df.restart($1) AS id`, [id]);
    const again = rows[0].id as string;
    expect(again).toMatch(/^[0-9a-f]{8}$/);
    expect(again).not.toBe(id);
    const graph = (x: string) =>
      t.query(
        `SELECT id, node_type, query, result_name, left_node, right_node, options, submitted_by::text AS owner
           FROM df.nodes WHERE instance_id = $1 ORDER BY id`,
        [x],
      );
    expect(await graph(again)).toEqual(await graph(id));
    expect(await t.query(`SELECT DISTINCT status, attempts, result FROM df.nodes WHERE instance_id = $1`, [again])).toEqual([
      { status: 'pending', attempts: 0, result: null },
    ]);
    expect(await queued(again)).toEqual([true]);
    expect(await t.query(`SELECT status, label, vars, root_node = (SELECT root_node FROM df.instances WHERE id = $2) AS same_root, submitted_by::text AS owner
                            FROM df.instances WHERE id = $1`, [again, id])).toEqual([
      { status: 'pending', label: 'nightly', vars: { region: 'eu' }, same_root: true, owner: t.role('alice') },
    ]);
    expect(await instance(id)).toMatchObject({ status: 'failed' });
  });

  it('another role cannot restart the instance', async () => {
    const id = await failed();
    const count = async () => (await t.query(`SELECT count(*)::int AS n FROM df.instances`))[0].n;
    const before = await count();
    expect((await error(pools.bob, `SELECT df.restart($1)`, [id])).code).toBe('P0002');
    expect((await error(t.owner, `SELECT df.restart($1)`, [id])).code).toBe('P0002');
    expect((await error(pools.alice, `SELECT df.restart('')`)).code).toBe('22023');
    expect(await count()).toBe(before);
  });
});
