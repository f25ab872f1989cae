/**
 * SPEC §2 / §5 / §6.2: df.version, df.target_database, df.run (no-op) and df.metrics.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

describe('helpers', () => {
  it('df.version leads with the pg_durable version it is compatible with', async () => {
    expect(await t.query(`SELECT df.version() AS v`)).toEqual([{ v: '0.2.6 (pgflare 0.1.0)' }]);
  });

  it('df.target_database is the database holding schema df', async () => {
    expect(await t.query(`SELECT df.target_database() AS d`)).toEqual([{ d: t.name }]);
  });

  it('df.run is a no-op that reports what it would trigger', async () => {
    expect(await t.query(`SELECT df.run() AS a, df.run('abcd1234') AS b, df.run(instance_id => NULL) AS c`)).toEqual([
      { a: 'Triggered run for all pending instances', b: 'Triggered run for instance: abcd1234', c: 'Triggered run for all pending instances' },
    ]);
  });
});

describe('df.metrics', () => {
  it('counts instances by state, root generations and stamped nodes', async () => {
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      const states = ['pending', 'running', 'running', 'completed', 'failed', 'cancelled'];
      for (const [i, s] of states.entries()) {
        const id = `e000000${i}`;
        await c.query(
          `INSERT INTO df.instances (id, root_node, status, submitted_by, generation) VALUES ($1, 'e0000000', $2, quote_ident(current_user)::regrole, $3)`,
          [id, s, i === 1 ? 3 : 1],
        );
        await c.query(
          `INSERT INTO df.nodes (id, instance_id, node_type, query, status, submitted_by, status_details)
           VALUES ('e0000000', $1, 'SQL', 'SELECT 1', 'pending', quote_ident(current_user)::regrole, $2::jsonb)`,
          [id, s === 'pending' ? null : JSON.stringify({ execution_id: `${id}::1` })],
        );
      }
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    const six = `total_instances, running_instances, completed_instances, failed_instances, total_executions, total_events`;
    expect(await t.query(`SELECT ${six} FROM df.metrics()`)).toEqual([
      {
        total_instances: 6,
        running_instances: 3,
        completed_instances: 1,
        failed_instances: 2,
        total_executions: 8,
        total_events: 5,
      },
    ]);
  });

  it('is not executable by PUBLIC (§6.2), unlike the rest of the control API', async () => {
    const [r] = await t.query(`
      SELECT has_function_privilege('public', 'df.metrics()', 'EXECUTE') AS metrics,
             has_function_privilege('public', 'df.status(text)', 'EXECUTE') AS status,
             has_function_privilege('public', 'df.await_instance(text, integer)', 'EXECUTE') AS await`);
    expect(r).toEqual({ metrics: false, status: true, await: true });
  });
});
