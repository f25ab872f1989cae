/**
 * SPEC §6.2 (test 15_rls): the monitoring functions run as the caller, so a role sees only its own
 * instances and nodes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const pools: Record<string, pg.Pool> = {};

async function createUser(base: string) {
  const role = t.role(base);
  await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await t.query(`GRANT USAGE ON SCHEMA df TO ${role}`);
  await t.query(`GRANT SELECT ON df.instances, df.nodes TO ${role}`);
  await t.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA df TO ${role}`);
  pools[base] = new pg.Pool({ connectionString: t.url(role), max: 2 });
  return role;
}

async function arrange(id: string, role: string, label: string) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO df.instances (id, label, root_node, status, submitted_by, output) VALUES ($1, $2, 'b0000001', 'completed', $3::regrole, '1')`,
      [id, label, role],
    );
    await c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, status, result, submitted_by, status_details)
       VALUES ('b0000001', $1::text, 'SQL', 'SELECT 1', 'completed', '1', $2::regrole, jsonb_build_object('execution_id', $1::text || '::1'))`,
      [id, role],
    );
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

beforeAll(async () => {
  const alice = await createUser('alice');
  const bob = await createUser('bob');
  await arrange('a11ce001', alice, 'shared-label');
  await arrange('b0b00001', bob, 'shared-label');
});
afterAll(async () => {
  await Promise.all(Object.values(pools).map((p) => p.end()));
});

const q = async (who: string, sql: string) => (await pools[who].query(sql)).rows;

describe('monitoring under RLS', () => {
  it('list_instances (both overloads) shows only the caller’s instances', async () => {
    expect((await q('alice', `SELECT instance_id FROM df.list_instances()`)).map((r) => r.instance_id)).toEqual(['a11ce001']);
    expect((await q('bob', `SELECT instance_id FROM df.list_instances(NULL, 10, 'shared-label')`)).map((r) => r.instance_id)).toEqual(['b0b00001']);
  });

  it('instance_info, instance_executions and instance_nodes are empty for another role’s instance', async () => {
    expect(await q('bob', `SELECT * FROM df.instance_info('a11ce001')`)).toEqual([]);
    expect(await q('bob', `SELECT * FROM df.instance_executions('a11ce001')`)).toEqual([]);
    expect(await q('bob', `SELECT * FROM df.instance_nodes('a11ce001')`)).toEqual([]);
    expect(await q('bob', `SELECT * FROM df.instance_nodes('a11ce001', 1)`)).toEqual([]);
  });

  it('the owner of the instance sees it everywhere', async () => {
    expect((await q('alice', `SELECT status FROM df.instance_info('a11ce001')`))).toEqual([{ status: 'completed' }]);
    expect((await q('alice', `SELECT execution_id, status, event_count FROM df.instance_executions('a11ce001')`))).toEqual([
      { execution_id: 1, status: 'Completed', event_count: 1 },
    ]);
    expect((await q('alice', `SELECT node_id, inferred_status FROM df.instance_nodes('a11ce001')`))).toEqual([
      { node_id: 'b0000001', inferred_status: 'completed' },
    ]);
  });
});
