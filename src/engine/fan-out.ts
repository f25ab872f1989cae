/**
 * A JOIN's branches finish side by side (migrations/0031_fan_out.sql). A branch's checkpoint that changes
 * only rows of its own branch and adds one to the JOIN's count of finished branches is written with the
 * instance row locked FOR SHARE, and the count is added to in SQL; every other checkpoint of the
 * instance takes the row exclusively, as before. The last branch's addition is refused (PFS01) and its
 * checkpoint is done again from a fresh read under the exclusive lock, which fires the JOIN. Pure: what
 * qualifies, and the write's form.
 */
import { ancestorsOf, branchCount, type Graph } from '../graph/graph.ts';
import type { Changes } from '../graph/changes.ts';
import type { Expectation, RawNode, serialize } from './snapshot.ts';

/** A branch's write: the JOIN whose count it adds to (null: none), and the most that count may reach by it. */
export interface BranchWrite {
  joinId: string | null;
  max: number;
}

/**
 * The branch write `ch` amounts to, or null when it changes anything outside the leaf's branch of the
 * nearest JOIN above it (the instance, a scope dropped or cancelled, a row of another branch or above
 * the JOIN, the JOIN's own status). Within the branch anything goes (a chain's next step, a loop's
 * iteration); the JOIN's row only by one more finished branch. `pre` gives the rows `ch` was computed from.
 */
export function branchWrite(g: Graph, leafId: string, pre: readonly RawNode[], ch: Changes): BranchWrite | null {
  if (ch.instance || ch.cancelScopes.length || ch.scopeDeletes.size) return null;
  const path = [leafId, ...ancestorsOf(g, leafId)];
  const at = path.findIndex((id) => g.nodes.get(id)?.type === 'JOIN');
  if (at < 1) return null;
  const joinId = path[at];
  const branch = path[at - 1];
  const inBranch = (id: string) => id === branch || ancestorsOf(g, id).includes(branch);
  let counted = false;
  for (const [id, c] of ch.nodes) {
    if (id === joinId) {
      const before = pre.find((n) => n.id === id);
      const keys = Object.keys(c);
      if (!before || keys.length !== 1 || keys[0] !== 'state' || !c.state) return null;
      const { done, ...rest } = c.state;
      const { done: was, ...restWas } = before.state ?? {};
      if (Number(done) !== Number(was ?? 0) + 1 || JSON.stringify(rest) !== JSON.stringify(restWas)) return null;
      counted = true;
    } else if (!inBranch(id)) return null;
  }
  for (const sc of ch.scopes.values()) if (!inBranch(sc.root)) return null;
  return { joinId: counted ? joinId : null, max: branchCount(g.nodes.get(joinId)!) - 1 };
}

/** df._apply's p_changes for a branch write: shared lock, and the JOIN's count added to in SQL. */
export function branchChanges(changes: ReturnType<typeof serialize>, w: BranchWrite) {
  return {
    ...changes,
    share: true,
    nodes: changes.nodes.map((c) => (c.id === w.joinId ? { id: c.id, join_max: w.max } : c)),
  };
}

/** The check of a branch write: the JOIN's state (its count) left out, the rest as assumed. */
export function branchExpectation(e: Expectation, w: BranchWrite): Expectation {
  const j = w.joinId === null ? undefined : e.nodes[w.joinId];
  return j ? { ...e, nodes: { ...e.nodes, [w.joinId!]: { ...j, any_state: true } } } : e;
}
