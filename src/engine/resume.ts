/**
 * df.resume's engine half (migrations/*_resume.sql). df.resume flips a failed instance to running and makes its
 * root row claimable; the claim of a root row whose node finished while its instance is active lands here.
 * In the claim transaction: lock the instance, read every node (with its result) and scope, run
 * Checkpoint.resume on the state machine (completed leaves replayed, failed and unrun ones activated
 * afresh) and write its changes with the event 'resumed' (detail: the error it resumed from). Rare, so it
 * reads the whole instance and never computes from the engine's snapshot.
 */
import type { DbClient } from './db.ts';
import { Checkpoint } from '../graph/advance.ts';
import type { Changes } from '../graph/changes.ts';
import { recordedText } from '../graph/replay.ts';
import type { ClaimedRow } from './queries/claim.ts';
import { literal, lastRows } from './sql-text.ts';
import { graphOf, type EngineContext } from './context.ts';
import { checkpointOver, serialize, type RawNode, type RawScope } from './snapshot.ts';
import { ACTIVE } from './step-policy.ts';
import type { Tx } from './tx.ts';

/** Leaves whose completion is replayed (their effects happened once): everything but BREAK, which has none. */
const REPLAYED: ReadonlySet<string> = new Set(['SQL', 'HTTP', 'HTTP_MULTIPART', 'SLEEP', 'WAIT_SCHEDULE', 'SIGNAL']);

interface Loaded {
  instance: { status: string; generation: number; output: string | null } | null;
  nodes: (RawNode & { result: string | null })[];
  scopes: RawScope[];
}

/**
 * Whether a claimed row is a resume request: the root of an active instance, activated before and
 * finished (failed; or completed by a df.break() outside any loop, which failed the instance).
 */
export const isResume = (row: ClaimedRow): boolean =>
  row.id === row.root_node && row.stamp !== null && (row.status === 'failed' || row.status === 'completed');

/** Computes the resume and records its write in `tx.write`; null when the instance is no longer active. */
export async function resumeInstance(ctx: EngineContext, client: DbClient, tx: Tx, row: ClaimedRow, now: Date): Promise<Changes | null> {
  const id = literal(row.instance_id);
  const res = await client.query(
    `${tx.owes.take()}SELECT
       (SELECT to_jsonb(x) FROM (SELECT i.status, i.generation, i.output FROM df.instances i WHERE i.id = ${id} FOR NO KEY UPDATE) x) AS instance,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'status', n.status, 'stamp', n.status_details ->> 'execution_id',
                                                     'state', n.state, 'result', n.result::text)), '[]')
          FROM df.nodes n WHERE n.instance_id = ${id}) AS nodes,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.scope_id, 'parent', s.parent_scope, 'root', s.root_node,
                                                     'generation', s.generation, 'named', s.named, 'status', s.status, 'result', s.result)), '[]')
          FROM df.scopes s WHERE s.instance_id = ${id}) AS scopes`,
  );
  const s = lastRows<Loaded>(res)[0];
  if (!s.instance || !ACTIVE.has(s.instance.status)) return null;
  const graph = await graphOf(ctx, client, row);
  const done = new Map<string, string>();
  for (const n of s.nodes) {
    const g = graph.nodes.get(n.id);
    if (n.status !== 'completed' || n.result === null || !g || !REPLAYED.has(g.type)) continue;
    const name = g.resultName;
    const exact = name ? s.scopes.map((sc) => sc.named[name]).filter((t): t is string => typeof t === 'string') : [];
    done.set(n.id, recordedText(n.result, exact));
  }
  const cp = checkpointOver(graph, now, s, s.instance.generation);
  cp.resume(done);
  const ch = cp.changes;
  const events = [{ node_id: row.id, kind: 'resumed', attempt: null, detail: s.instance.output }];
  ctx.snapshots.delete(row.instance_id);
  tx.write = { instanceId: row.instance_id, before: '', changes: () => serialize(ch, events), expect: null };
  tx.redo = undefined;
  tx.written = undefined;
  return ch;
}
