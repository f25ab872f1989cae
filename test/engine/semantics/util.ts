/** Shared helpers for the SPEC §3 semantics tests (not a test file). */
import type { Engine, RunResult } from '../../../src/engine/engine.ts';
import type { TestDb } from '../../helpers/db.ts';

export interface NodeView {
  node_id: string;
  node_type: string;
  query: string | null;
  result_name: string | null;
  left_node: string | null;
  right_node: string | null;
  status: string;
  result: unknown;
  stamp: string | null;
  inferred_status: string;
  inferred_status_from_ancestor_id: string | null;
}

/** df.instance_nodes with result parsed and the stamp pulled out of status_details. */
export async function nodes(t: TestDb, id: string): Promise<NodeView[]> {
  return t.query<NodeView>(
    `SELECT node_id, node_type, query, result_name, left_node, right_node, status, result::jsonb AS result,
            status_details::jsonb ->> 'execution_id' AS stamp, inferred_status, inferred_status_from_ancestor_id
       FROM df.instance_nodes($1)`,
    [id],
  );
}

/** The one node whose type matches and whose query contains `q` (or whose type alone is unique). */
export async function node(t: TestDb, id: string, type: string, q?: string): Promise<NodeView> {
  const all = (await nodes(t, id)).filter((n) => n.node_type === type && (q === undefined || (n.query ?? '').includes(q)));
  if (all.length !== 1) throw new Error(`expected one ${type} node matching ${q ?? '*'}, found ${all.length}`);
  return all[0];
}

export async function instanceRow(t: TestDb, id: string) {
  const [r] = await t.query<{ status: string; output: string | null; completed_at: Date | null; generation: number; root_node: string }>(
    `SELECT status, output, completed_at, generation, root_node FROM df.instances WHERE id = $1`,
    [id],
  );
  return r;
}

export async function queued(t: TestDb, id: string): Promise<number> {
  const [r] = await t.query(`SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1 AND run_at IS NOT NULL`, [id]);
  return r.n;
}

/** SQL string literal. */
export const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Like drain, but returns what ran (kind, instance, node), so a test can look at its own instance only. */
export async function runAll(e: Engine, now?: Date): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (let i = 0; i < 10_000; i++) {
    const r = await e.runOnce({ now });
    if (!r) return out;
    out.push(r);
  }
  throw new Error('runAll: did not settle');
}

/** What ran for instance `id` while draining at `now`. */
export async function ranFor(e: Engine, id: string, now?: Date): Promise<RunResult[]> {
  return (await runAll(e, now)).filter((r) => r.instanceId === id);
}
