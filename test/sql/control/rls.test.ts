/**
 * SPEC §6.2 (test 15_rls): the control functions run as the caller, so another role's instance is
 * invisible: status/result NULL, cancel/signal "not found or access denied", await "not found".
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const pools: Record<string, pg.Pool> = {};

/** The privileges a role needs to use these functions (what df.grant_usage must grant). */
async function createUser(base: string) {
  const role = t.role(base);
  await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await t.query(`GRANT USAGE ON SCHEMA df TO ${role}`);
  await t.query(`GRANT SELECT, UPDATE (status, updated_at) ON df.instances TO ${role}`);
  await t.query(`GRANT SELECT, UPDATE (run_at) ON df.nodes TO ${role}`);
  await t.query(`GRANT SELECT, INSERT (instance_id, signal_name, payload, submitted_by) ON df.signals TO ${role}`);
  await t.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA df TO ${role}`);
  pools[base] = new pg.Pool({ connectionString: t.url(role), max: 2 });
  return role;
}

/** An instance owned by `role` with one running SIGNAL node waiting for 'go'. */
async function arrange(id: string, role: string) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(`INSERT INTO df.instances (id, root_node, status, submitted_by) VALUES ($1, 'b0000001', 'running', $2::regrole)`, [id, role]);
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, status, result, submitted_by) VALUES
         ('b0000001', $1, 'SIGNAL', '{"signal_name":"go","timeout_seconds":null}', 'running', NULL, $2::regrole)`,
      [id, role],
    );
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

async function error(pool: pg.Pool, sql: string) {
  try {
    await pool.query(sql);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error(`no error from ${sql}`);
}

beforeAll(async () => {
  const alice = await createUser('alice');
  await createUser('bob');
  await arrange('a11ce001', alice);
  await arrange('a11ce002', alice);
});
afterAll(async () => {
  await Promise.all(Object.values(pools).map((p) => p.end()));
});

describe('another role’s instance', () => {
  it('has no status or result for bob', async () => {
    await t.query(`UPDATE df.nodes SET status = 'completed', result = '"ok"' WHERE instance_id = 'a11ce002'`);
    await t.query(`UPDATE df.instances SET status = 'completed' WHERE id = 'a11ce002'`);
    expect((await pools.bob.query(`SELECT df.status('a11ce001') AS s, df.result('a11ce002') AS r`)).rows).toEqual([{ s: null, r: null }]);
    expect((await pools.alice.query(`SELECT df.status('a11ce001') AS s, df.result('a11ce002') AS r`)).rows).toEqual([
      { s: 'running', r: '"ok"' },
    ]);
  });

  it('cannot be cancelled, signalled or awaited by bob', async () => {
    expect(await error(pools.bob, `SELECT df.cancel('a11ce001')`)).toEqual({ code: 'P0002', message: 'Instance not found or access denied: a11ce001' });
    expect(await error(pools.bob, `SELECT df.signal('a11ce001', 'go')`)).toEqual({ code: 'P0002', message: 'Instance not found or access denied: a11ce001' });
    expect(await error(pools.bob, `SELECT df.await_instance('a11ce001', 1)`)).toEqual({ code: 'P0002', message: 'Instance not found: a11ce001' });
    expect(await t.query(`SELECT status FROM df.instances WHERE id = 'a11ce001'`)).toEqual([{ status: 'running' }]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.signals`)).toEqual([{ n: 0 }]);
  });

  it('can be signalled and cancelled by its owner with the granted privileges', async () => {
    expect((await pools.alice.query(`SELECT df.signal('a11ce001', 'go', 'yes') AS r`)).rows).toEqual([{ r: 'OK' }]);
    expect(await t.query(`SELECT payload, submitted_by::text = $1 AS mine FROM df.signals`, [t.role('alice')])).toEqual([
      { payload: 'yes', mine: true },
    ]);
    expect(await t.query(`SELECT run_at IS NOT NULL AS ready FROM df.nodes WHERE instance_id = 'a11ce001'`)).toEqual([{ ready: true }]);
    expect((await pools.alice.query(`SELECT df.cancel('a11ce001') AS r`)).rows).toEqual([{ r: 'Instance a11ce001 cancelled: Cancelled by user' }]);
    expect(await t.query(`SELECT i.status, n.run_at FROM df.instances i JOIN df.nodes n ON n.instance_id = i.id WHERE i.id = 'a11ce001'`)).toEqual([
      { status: 'cancelled', run_at: null },
    ]);
  });
});
