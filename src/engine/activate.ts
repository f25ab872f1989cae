/**
 * An instance's activation (its first claim: df.start only made its root claimable) and the step it
 * continues with in the same transaction. The first step runs in the activating transaction and the
 * activation is written with that step's checkpoint: one claim, one checkpoint and one commit per
 * one-step instance instead of two (bench/ W2, W3). Nothing is written before the step's SQL runs, so the
 * step holds only the claimed row (df.cancel never waits for it), and a crash or a failed checkpoint
 * leaves the instance unstarted. Used by the single-row path (run-claimed.ts, both the plain and the
 * early one-step start) and by batches (batch.ts).
 */
import type { DbClient } from './db.ts';
import type { Changes } from '../graph/changes.ts';
import { scopeOfStamp } from '../graph/scope-ids.ts';
import { substitute } from '../graph/substitute.ts';
import type { ClaimedRow } from './queries/claim.ts';
import { isNonTransactional } from './executors/sql.ts';
import { otherDatabase } from './executors/other-database.ts';
import { checkpoint } from './checkpoint.ts';
import type { EngineContext } from './context.ts';
import { ACTIVE, ownerBlock, substitutionContext } from './step-policy.ts';
import type { Tx } from './tx.ts';

/**
 * Activates `row`'s instance (a checkpoint computed from the claimed row alone) and finds the step to
 * continue with. With `next`, the activation is not written (tx.write cleared) but carried into the
 * next checkpoint of the transaction (tx.carry): the step's. `ch` is null when the instance is gone.
 * `needsStepSavepoint`: continue only while the savepoint the claim opened for its step is still open
 * (nothing the activation sent released it).
 */
export async function activateAndContinue(
  ctx: EngineContext,
  client: DbClient,
  tx: Tx,
  row: ClaimedRow,
  now: Date,
  opts: { noRead?: boolean; needsStepSavepoint?: boolean } = {},
): Promise<{ ch: Changes | null; next: ClaimedRow | null }> {
  const ch = await checkpoint(ctx, client, tx, row, now, (cp) => cp.start(), { fromClaim: true, noRead: opts.noRead });
  const next = ch && (!opts.needsStepSavepoint || tx.owes.pending) ? continuation(ctx, row, ch, now) : null;
  if (ch && next) {
    tx.write = null;
    tx.carry = { ...ch, ready: ch.ready.filter((r) => r.id !== next.id) };
  }
  return { ch, next };
}

/**
 * The step to go on with after an activation: a SQL leaf it made ready and due now that runs inside
 * a transaction, as the row a claim would have returned (its row is not locked, but it is ready only
 * in this uncommitted transaction, so no one else can claim it).
 */
export function continuation(ctx: EngineContext, row: ClaimedRow, ch: Changes, now: Date): ClaimedRow | null {
  const graph = ctx.graphs.get(row.instance_id);
  const opts = ctx.graphOptions.get(row.instance_id);
  if (!graph || !opts) return null;
  for (const r of ch.ready) {
    const n = graph.nodes.get(r.id);
    const c = ch.nodes.get(r.id);
    if (n?.type !== 'SQL' || !c?.stamp || c.status !== 'running' || Date.parse(r.runAt) > now.getTime()) continue;
    if (isNonTransactional(n.query ?? '') || opts.get(n.id)?.database) continue;
    const scope = ch.scopes.get(scopeOfStamp(c.stamp));
    if (!scope || scope.status !== 'running') continue;
    return {
      ...row,
      id: n.id,
      node_type: 'SQL',
      query: n.query,
      result_name: n.resultName,
      status: 'running',
      stamp: c.stamp,
      state: c.state ?? null,
      attempts: c.attempts ?? 0,
      run_at: new Date(r.runAt),
      options: opts.get(n.id) ?? null,
      instance_status: 'running',
      named: { ...scope.named },
      scope_status: 'running',
    };
  }
  return null;
}

/**
 * A one-step instance's statement, substituted, when its first claim can run it at once: a SQL root,
 * first claimed, active, not blocked, in the df database, a statement that runs inside a transaction. (Ownership is the
 * caller's check.) Its activation reads nothing and changes nothing the statement sees. Kept per
 * claimed row: the claim, a batch and the next claim's size all ask about the same row.
 */
export function oneStepText(ctx: EngineContext, row: ClaimedRow): string | null {
  let text = ctx.oneStepTexts.get(row);
  if (text === undefined) {
    text = null;
    if (row.node_type === 'SQL' && !otherDatabase(row) && row.id === row.root_node && row.stamp === null && ACTIVE.has(row.instance_status) && ownerBlock(ctx, row) === null) {
      const sub = substitute(row.query ?? '', substitutionContext(row), 'sql');
      if (sub.ok && !isNonTransactional(sub.text)) text = sub.text;
    }
    ctx.oneStepTexts.set(row, text);
  }
  return text;
}
