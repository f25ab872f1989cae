/**
 * SPEC §5 / §5.2: df.instance_nodes (both overloads) and the read-time inferred_status
 * (test 53_inferred_status, 57/63/65 stamp shapes).
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

interface N {
  id: string;
  type: string;
  status?: string;
  stamp?: string | null;
  left?: string;
  right?: string;
  query?: unknown;
  result?: unknown;
}

/** Inserts an instance rooted at nodes[0] (or `root`); `stamp` strings may use `$` for the instance id. */
async function arrange(inst: string, nodes: N[], root = nodes[0].id) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO df.instances (id, root_node, status, submitted_by) VALUES ($1, $2, 'running', quote_ident(current_user)::regrole)`,
      [inst, root],
    );
    for (const n of nodes) {
      const leaf = !['THEN', 'IF', 'JOIN', 'LOOP', 'RACE'].includes(n.type);
      const query = n.query === undefined ? (leaf || n.type === 'IF' ? 'SELECT 1' : null) : typeof n.query === 'string' ? n.query : JSON.stringify(n.query);
      await c.query(
        `INSERT INTO df.nodes (id, instance_id, node_type, query, left_node, right_node, status, result, submitted_by, status_details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, quote_ident(current_user)::regrole, $9::jsonb)`,
        [
          n.id,
          inst,
          n.type,
          query,
          n.left ?? null,
          n.right ?? null,
          n.status ?? 'pending',
          n.result === undefined ? null : JSON.stringify(n.result),
          n.stamp == null ? null : JSON.stringify({ execution_id: n.stamp.replaceAll('$', inst) }),
        ],
      );
    }
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

/** id → [inferred_status, inferred_status_from_ancestor_id] */
async function inferred(inst: string) {
  const rows = await t.query(`SELECT node_id, inferred_status, inferred_status_from_ancestor_id FROM df.instance_nodes($1) ORDER BY node_id`, [inst]);
  return Object.fromEntries(rows.map((r) => [r.node_id, [r.inferred_status, r.inferred_status_from_ancestor_id]]));
}

describe('inferred_status (§5.2)', () => {
  it('an untaken IF arm is skipped, decided by the IF; the rest mirrors its status', async () => {
    await arrange('40000001', [
      { id: 'f1000000', type: 'IF', status: 'completed', stamp: '$::1', left: 'f1000002', right: 'f1000003', query: { condition_node: 'f1000001' } },
      { id: 'f1000001', type: 'SQL', status: 'completed', stamp: '$::1', result: { rows: [{ ok: true }], row_count: 1 } },
      { id: 'f1000002', type: 'SQL', status: 'completed', stamp: '$::1', result: 1 },
      { id: 'f1000003', type: 'SQL', status: 'pending' },
    ]);
    expect(await inferred('40000001')).toEqual({
      f1000000: ['completed', null],
      f1000001: ['completed', null],
      f1000002: ['completed', null],
      f1000003: ['skipped', 'f1000000'],
    });
  });

  it('the right side of a failed THEN is skipped, down to its leaves, decided by the nearest decisive ancestor', async () => {
    await arrange('40000002', [
      { id: 'f2000000', type: 'THEN', status: 'failed', stamp: '$::1', left: 'f2000001', right: 'f2000002', result: 'boom' },
      { id: 'f2000001', type: 'SQL', status: 'failed', stamp: '$::1', result: 'boom' },
      { id: 'f2000002', type: 'THEN', left: 'f2000003', right: 'f2000004' },
      { id: 'f2000003', type: 'SQL' },
      { id: 'f2000004', type: 'SLEEP', query: '5' },
    ]);
    expect(await inferred('40000002')).toEqual({
      f2000000: ['failed', null],
      f2000001: ['failed', null],
      f2000002: ['skipped', 'f2000000'],
      f2000003: ['skipped', 'f2000000'],
      f2000004: ['skipped', 'f2000000'],
    });
  });

  it('a clean run mirrors the physical status; unstarted nodes of a running instance are pending', async () => {
    await arrange('40000003', [
      { id: 'f3000000', type: 'THEN', status: 'running', stamp: '$::1', left: 'f3000001', right: 'f3000002' },
      { id: 'f3000001', type: 'SQL', status: 'completed', stamp: '$::1', result: 1 },
      { id: 'f3000002', type: 'THEN', status: 'running', stamp: '$::1', left: 'f3000003', right: 'f3000004' },
      { id: 'f3000003', type: 'SIGNAL', status: 'running', stamp: '$::1', query: '{"signal_name":"go","timeout_seconds":null}' },
      { id: 'f3000004', type: 'SQL' },
    ]);
    expect(await inferred('40000003')).toEqual({
      f3000000: ['running', null],
      f3000001: ['completed', null],
      f3000002: ['running', null],
      f3000003: ['running', null],
      f3000004: ['pending', null],
    });
  });

  it('a root-loop body node left over from an older generation reads pending, from the highest-generation ancestor', async () => {
    await arrange('40000004', [
      { id: 'f4000000', type: 'LOOP', status: 'running', stamp: '$::3', left: 'f4000001' },
      { id: 'f4000001', type: 'THEN', status: 'running', stamp: '$::3', left: 'f4000002', right: 'f4000003' },
      { id: 'f4000002', type: 'SQL', status: 'completed', stamp: '$::3', result: 1 },
      { id: 'f4000003', type: 'SQL', status: 'completed', stamp: '$::2', result: 2 },
    ]);
    expect(await inferred('40000004')).toEqual({
      f4000000: ['running', null],
      f4000001: ['running', null],
      f4000002: ['completed', null],
      f4000003: ['pending', 'f4000001'],
    });
  });

  it('a branch scope spawned by an older root generation is superseded through its parent stamp', async () => {
    await arrange('40000005', [
      { id: 'f5000000', type: 'LOOP', status: 'running', stamp: '$::2', left: 'f5000001' },
      { id: 'f5000001', type: 'JOIN', status: 'running', stamp: '$::2', left: 'f5000002', right: 'f5000003' },
      { id: 'f5000002', type: 'SQL', status: 'completed', stamp: '$::1::f5000002::1', result: 1 },
      { id: 'f5000003', type: 'SQL', status: 'completed', stamp: '$::2::f5000003::1', result: 2 },
    ]);
    expect(await inferred('40000005')).toEqual({
      f5000000: ['running', null],
      f5000001: ['running', null],
      f5000002: ['pending', 'f5000001'],
      f5000003: ['completed', null],
    });
  });

  it('after a finished non-root loop nothing reads pending or running (test 65): old-iteration arms are skipped', async () => {
    // root THEN; its left is a non-root LOOP (own scope $::1::f6000001) that broke in iteration 2 through
    // the IF's then-arm; the else-arm ran (and completed) only in iteration 1.
    await arrange('40000006', [
      { id: 'f6000000', type: 'THEN', status: 'completed', stamp: '$::1', left: 'f6000001', right: 'f6000006', result: 3 },
      { id: 'f6000001', type: 'LOOP', status: 'completed', stamp: '$::1::f6000001::2', left: 'f6000002', result: 'done' },
      { id: 'f6000002', type: 'IF', status: 'completed', stamp: '$::1::f6000001::2', left: 'f6000004', right: 'f6000005', query: { condition_node: 'f6000003' }, result: 'done' },
      { id: 'f6000003', type: 'SQL', status: 'completed', stamp: '$::1::f6000001::2', result: 1 },
      { id: 'f6000004', type: 'BREAK', status: 'completed', stamp: '$::1::f6000001::2', query: '{"break_value":"done"}', result: 'done' },
      { id: 'f6000005', type: 'SQL', status: 'completed', stamp: '$::1::f6000001::1', result: 0 },
      { id: 'f6000006', type: 'SQL', status: 'completed', stamp: '$::1', result: 3 },
    ]);
    const got = await inferred('40000006');
    expect(got).toEqual({
      f6000000: ['completed', null],
      f6000001: ['completed', null],
      f6000002: ['completed', null],
      f6000003: ['completed', null],
      f6000004: ['completed', null],
      f6000005: ['skipped', 'f6000002'],
      f6000006: ['completed', null],
    });
    expect((Object.values(got) as [string, string | null][]).filter(([s]) => s === 'pending' || s === 'running')).toEqual([]);
  });

  it('the loser of a RACE keeps its physical status but reads skipped', async () => {
    await arrange('40000007', [
      { id: 'f7000000', type: 'RACE', status: 'completed', stamp: '$::1', left: 'f7000001', right: 'f7000002', result: 1 },
      { id: 'f7000001', type: 'SQL', status: 'completed', stamp: '$::1::f7000001::1', result: 1 },
      { id: 'f7000002', type: 'SIGNAL', status: 'running', stamp: '$::1::f7000002::1', query: '{"signal_name":"go","timeout_seconds":null}' },
    ]);
    const rows = await t.query(`SELECT node_id, status, inferred_status, inferred_status_from_ancestor_id FROM df.instance_nodes('40000007') WHERE node_id = 'f7000002'`);
    expect(rows).toEqual([{ node_id: 'f7000002', status: 'running', inferred_status: 'skipped', inferred_status_from_ancestor_id: 'f7000000' }]);
  });

  it('walks JOIN extra_nodes, IF condition_node and LOOP condition_node; unreachable nodes keep their stored status', async () => {
    await arrange('40000008', [
      { id: 'f8000000', type: 'THEN', status: 'failed', stamp: '$::1', left: 'f8000001', right: 'f8000005', result: 'x' },
      { id: 'f8000001', type: 'JOIN', status: 'failed', stamp: '$::1', left: 'f8000002', right: 'f8000003', query: { extra_nodes: ['f8000004'] }, result: 'x' },
      { id: 'f8000002', type: 'SQL', status: 'failed', stamp: '$::1::f8000002::1', result: 'x' },
      { id: 'f8000003', type: 'SQL', status: 'completed', stamp: '$::1::f8000003::1', result: 1 },
      { id: 'f8000004', type: 'SQL', status: 'running', stamp: '$::1::f8000004::1' },
      { id: 'f8000005', type: 'LOOP', left: 'f8000006', query: { condition_node: 'f8000007' } },
      { id: 'f8000006', type: 'IF', left: 'f8000009', right: 'f800000a', query: { condition_node: 'f8000008' } },
      { id: 'f8000007', type: 'SQL' },
      { id: 'f8000008', type: 'SQL' },
      { id: 'f8000009', type: 'SQL' },
      { id: 'f800000a', type: 'SQL' },
      // not referenced by anything
      { id: 'f80000f1', type: 'SQL', status: 'running', stamp: '$::1' },
      { id: 'f80000f2', type: 'SQL', status: 'completed', stamp: '$::1', result: 1 },
      { id: 'f80000f3', type: 'SQL' },
    ]);
    expect(await inferred('40000008')).toEqual({
      f8000000: ['failed', null],
      f8000001: ['failed', null],
      f8000002: ['failed', null],
      f8000003: ['completed', null],
      f8000004: ['skipped', 'f8000001'],
      f8000005: ['skipped', 'f8000000'],
      f8000006: ['skipped', 'f8000000'],
      f8000007: ['skipped', 'f8000000'],
      f8000008: ['skipped', 'f8000000'],
      f8000009: ['skipped', 'f8000000'],
      f800000a: ['skipped', 'f8000000'],
      f80000f1: ['running', null],
      f80000f2: ['completed', null],
      f80000f3: ['pending', null],
    });
  });

  it('treats unparseable stamps as unstamped and survives a cyclic graph', async () => {
    await arrange('40000009', [
      // root THEN completed in gen 1; its right child points back to the root (corrupt data)
      { id: 'f9000000', type: 'THEN', status: 'completed', stamp: '$::1', left: 'f9000001', right: 'f9000002', result: 1 },
      { id: 'f9000001', type: 'SQL', status: 'completed', stamp: '$::2.0', result: 1 }, // generation not an integer
      { id: 'f9000002', type: 'THEN', status: 'completed', stamp: '$::1::3', left: 'f9000003', right: 'f9000000', result: 1 }, // even-length scope
      { id: 'f9000003', type: 'SQL', status: 'completed', stamp: '$::0::::1', result: 1 }, // empty node id
    ]);
    // Read as stamps, '$::2.0' would supersede the root's '$::1' (and every gen-1 node), '$::1::3' would
    // be a generation-3 stamp of scope '$::1', and '$::0::::1' would hang off the superseded generation 0.
    expect(await inferred('40000009')).toEqual({
      f9000000: ['completed', null],
      f9000001: ['completed', null],
      f9000002: ['completed', null],
      f9000003: ['completed', null],
    });
  });

  it('a newer generation in a nested child scope supersedes only that scope', async () => {
    // JOIN branch root is a LOOP (scope $::1::fa000002) now in generation 2; its body at gen 1 is superseded,
    // the sibling branch (scope $::1::fa000001) is not.
    await arrange('4000000a', [
      { id: 'fa000000', type: 'JOIN', status: 'running', stamp: '$::1', left: 'fa000001', right: 'fa000002' },
      { id: 'fa000001', type: 'SQL', status: 'completed', stamp: '$::1::fa000001::1', result: 1 },
      { id: 'fa000002', type: 'LOOP', status: 'running', stamp: '$::1::fa000002::2', left: 'fa000003' },
      { id: 'fa000003', type: 'SQL', status: 'completed', stamp: '$::1::fa000002::1', result: 1 },
    ]);
    expect(await inferred('4000000a')).toEqual({
      fa000000: ['running', null],
      fa000001: ['completed', null],
      fa000002: ['running', null],
      fa000003: ['pending', 'fa000002'],
    });
  });
});

describe('df.instance_nodes', () => {
  it('returns every column of the current shape', async () => {
    await arrange('4000000b', [
      { id: 'fb000000', type: 'SQL', status: 'completed', stamp: '$::1', result: { rows: [{ a: 1 }], row_count: 1 } },
    ]);
    const rows = await t.query(`SELECT * FROM df.instance_nodes(instance_id_param => '4000000b')`);
    expect(rows).toEqual([
      {
        node_id: 'fb000000',
        node_type: 'SQL',
        query: 'SELECT 1',
        result_name: null,
        left_node: null,
        right_node: null,
        status: 'completed',
        result: '{"rows": [{"a": 1}], "row_count": 1}',
        status_details: '{"execution_id": "4000000b::1"}',
        inferred_status: 'completed',
        inferred_status_from_ancestor_id: null,
        updated_at: expect.any(Date),
      },
    ]);
    const [sig] = await t.query(`SELECT pg_get_function_result('df.instance_nodes(text)'::regprocedure) AS r`);
    expect(sig.r).toBe(
      'TABLE(node_id text, node_type text, query text, result_name text, left_node text, right_node text, status text, result text, status_details text, inferred_status text, inferred_status_from_ancestor_id text, updated_at timestamp with time zone)',
    );
  });

  it('the legacy 2-argument overload is a plain projection with execution_id 1', async () => {
    const rows = await t.query(`SELECT * FROM df.instance_nodes('40000002', 5) ORDER BY node_id`);
    expect(rows.map((r) => [r.execution_id, r.node_id, r.status])).toEqual([
      [1, 'f2000000', 'failed'],
      [1, 'f2000001', 'failed'],
      [1, 'f2000002', 'pending'],
      [1, 'f2000003', 'pending'],
      [1, 'f2000004', 'pending'],
    ]);
    expect(Object.keys(rows[0])).toEqual([
      'execution_id', 'node_id', 'node_type', 'query', 'result_name', 'left_node', 'right_node', 'status', 'result', 'updated_at',
    ]);
  });

  it('returns nothing for an unknown instance or NULL', async () => {
    expect(await t.query(`SELECT * FROM df.instance_nodes('ffffffff')`)).toEqual([]);
    expect(await t.query(`SELECT * FROM df.instance_nodes(NULL)`)).toEqual([]);
    expect(await t.query(`SELECT * FROM df.instance_nodes('ffffffff', 1)`)).toEqual([]);
  });
});
