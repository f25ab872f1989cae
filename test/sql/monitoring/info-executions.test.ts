/**
 * SPEC §5: df.instance_info and df.instance_executions, and agreement of status/list/info
 * (tests 05_monitoring, 22_cancel_status_consistency).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const FN = 'pg_durable::orchestration::execute-function-graph';

/**
 * 33000001: completed single-generation run, 1.5 s long, 2 stamped nodes.
 * 33000002: a root loop in its 3rd iteration: LOOP stamped gen 3, body SQL gen 2 (superseded),
 *           JOIN branch node stamped in a child scope of gen 3.
 * 33000003: cancelled; 33000004: failed; 33000005: pending (never stamped).
 */
beforeAll(async () => {
  const c = await t.owner.connect();
  const me = 'quote_ident(current_user)::regrole';
  const ins = (id: string, status: string, gen: number, output: string | null, label: string | null, done: boolean) =>
    c.query(
      `INSERT INTO df.instances (id, label, root_node, status, submitted_by, created_at, completed_at, generation, output)
       VALUES ($1, $2, 'd0000001', $3, ${me}, '2024-01-01 00:00:00+00', CASE WHEN $4 THEN timestamptz '2024-01-01 00:00:01.5+00' END, $5, $6)`,
      [id, label, status, done, gen, output],
    );
  const node = (inst: string, id: string, type: string, query: string | null, left: string | null, right: string | null, status: string, stamp: string | null) =>
    c.query(
      `INSERT INTO df.nodes (id, instance_id, node_type, query, left_node, right_node, status, submitted_by, status_details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, ${me}, $8::jsonb)`,
      [id, inst, type, query, left, right, status, stamp === null ? null : JSON.stringify({ execution_id: stamp })],
    );
  try {
    await c.query('BEGIN');
    await ins('33000001', 'completed', 1, '42', 'nightly', true);
    await node('33000001', 'd0000001', 'THEN', null, 'd0000002', 'd0000003', 'completed', '33000001::1');
    await node('33000001', 'd0000002', 'SQL', 'SELECT 1', null, null, 'completed', '33000001::1');
    await node('33000001', 'd0000003', 'SQL', 'SELECT 2', null, null, 'pending', null);

    await ins('33000002', 'running', 3, null, null, false);
    await node('33000002', 'd0000001', 'LOOP', null, 'd0000002', null, 'running', '33000002::3');
    await node('33000002', 'd0000002', 'JOIN', null, 'd0000003', 'd0000004', 'completed', '33000002::2');
    await node('33000002', 'd0000003', 'SQL', 'SELECT 1', null, null, 'running', '33000002::3::d0000003::1');
    await node('33000002', 'd0000004', 'SQL', 'SELECT 2', null, null, 'completed', '33000002::1::d0000004::1');

    await ins('33000003', 'cancelled', 1, null, null, false);
    await node('33000003', 'd0000001', 'SQL', 'SELECT 1', null, null, 'running', '33000003::1');
    await ins('33000004', 'failed', 1, 'SQL execution failed: error returned from database: division by zero', null, false);
    await node('33000004', 'd0000001', 'SQL', 'SELECT 1/0', null, null, 'failed', '33000004::1');
    await ins('33000005', 'pending', 1, null, null, false);
    await node('33000005', 'd0000001', 'SQL', 'SELECT 1', null, null, 'pending', null);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
});

async function error(sql: string) {
  try {
    await t.query(sql);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error(`no error from ${sql}`);
}

describe('df.instance_info', () => {
  it('returns one row with the pg_durable columns', async () => {
    expect(await t.query(`SELECT * FROM df.instance_info('33000001')`)).toEqual([
      { instance_id: '33000001', label: 'nightly', function_name: FN, function_version: '1.0.0', current_execution_id: 1, status: 'completed', output: '42' },
    ]);
    expect(await t.query(`SELECT current_execution_id, status, output FROM df.instance_info(instance_id => '33000002')`)).toEqual([
      { current_execution_id: 3, status: 'running', output: null },
    ]);
  });

  it('returns no rows for an unknown id or NULL', async () => {
    expect(await t.query(`SELECT * FROM df.instance_info('ffffffff')`)).toEqual([]);
    expect(await t.query(`SELECT * FROM df.instance_info(NULL)`)).toEqual([]);
  });

  it('agrees with df.status and df.list_instances for every instance', async () => {
    const rows = await t.query(`
      SELECT l.instance_id, l.status AS listed, df.status(l.instance_id) AS status, i.status AS info,
             l.execution_count = i.current_execution_id AS same_gen, l.output IS NOT DISTINCT FROM i.output AS same_output
        FROM df.list_instances(NULL, 100) l JOIN df.instance_info(l.instance_id) i ON true
       ORDER BY 1`);
    expect(rows.map((r) => [r.instance_id, r.listed, r.status, r.info, r.same_gen, r.same_output])).toEqual([
      ['33000001', 'completed', 'completed', 'completed', true, true],
      ['33000002', 'running', 'running', 'running', true, true],
      ['33000003', 'cancelled', 'cancelled', 'cancelled', true, true],
      ['33000004', 'failed', 'failed', 'failed', true, true],
      ['33000005', 'pending', 'pending', 'pending', true, true],
    ]);
  });
});

describe('df.instance_executions', () => {
  it('a completed instance has one execution with its output, event count and duration', async () => {
    expect(await t.query(`SELECT * FROM df.instance_executions('33000001')`)).toEqual([
      { execution_id: 1, status: 'Completed', event_count: 2, duration_ms: 1500, output: '42' },
    ]);
  });

  it('a root loop lists one row per generation, newest first; older ones ContinuedAsNew', async () => {
    expect(await t.query(`SELECT * FROM df.instance_executions('33000002')`)).toEqual([
      { execution_id: 3, status: 'Running', event_count: 2, duration_ms: null, output: null },
      { execution_id: 2, status: 'ContinuedAsNew', event_count: 1, duration_ms: null, output: null },
      { execution_id: 1, status: 'ContinuedAsNew', event_count: 1, duration_ms: null, output: null },
    ]);
    expect((await t.query(`SELECT execution_id FROM df.instance_executions('33000002', 2)`)).map((r) => r.execution_id)).toEqual([3, 2]);
  });

  it('maps the other states: cancelled → Terminated, failed → Failed (with the error), pending → Pending', async () => {
    const rows = await t.query(`
      SELECT e.* FROM unnest(ARRAY['33000003', '33000004', '33000005']) AS x(id), df.instance_executions(x.id) e`);
    expect(rows).toEqual([
      { execution_id: 1, status: 'Terminated', event_count: 1, duration_ms: null, output: null },
      { execution_id: 1, status: 'Failed', event_count: 1, duration_ms: null, output: 'SQL execution failed: error returned from database: division by zero' },
      { execution_id: 1, status: 'Pending', event_count: 0, duration_ms: null, output: null },
    ]);
  });

  it('rejects limit_count < 1 with 22023, clamps large limits, and is empty for an unknown instance', async () => {
    expect(await error(`SELECT * FROM df.instance_executions('33000001', 0)`)).toEqual({ code: '22023', message: 'limit_count must be at least 1' });
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instance_executions('33000002', 2147483647)`)).toEqual([{ n: 3 }]);
    expect(await t.query(`SELECT * FROM df.instance_executions('ffffffff')`)).toEqual([]);
  });
});
