/**
 * One claim on a held session: claim (or take the rows the previous COMMIT already claimed), then run
 * the row (run-claimed.ts) or, when several were claimed and the first can join one, a batch (batch.ts).
 * A checkpoint that meets a node row another worker holds gives its row back and steps aside.
 */
import type { DbClient } from './db.ts';
import { beginAndClaim, beginClaimAndLoad, type ClaimedRow, type PreparedClaim } from './queries/claim.ts';
import { stepAside } from './queries/steps.ts';
import { batchable, runBatch, type BatchSizer } from './batch.ts';
import { branchBatchable, runBranches } from './branch-batch.ts';
import { cacheGraph, type EngineContext } from './context.ts';
import { isLockNotAvailable } from './errors.ts';
import { runClaimed } from './run-claimed.ts';
import { Owed, STEP_SAVEPOINT_NAME, type Ahead, type Tx } from './tx.ts';
import type { RunResult } from './types.ts';

export interface StepOnResult {
  /** A claim found a row (false: nothing was due; the claim transaction is committed). */
  claimed: boolean;
  results: RunResult[];
  /** A row to run on the lease path (its lease is committed). */
  lease?: ClaimedRow;
  /** The rows the COMMIT's claim took (`ahead`): their transaction is open. */
  next?: ClaimedRow[];
}

/**
 * One step on `client`, or a batch: claims (or takes `pending`, the rows the previous step's COMMIT
 * already claimed; empty = that claim found nothing), runs, commits. With `ahead`, the COMMIT also
 * claims the next rows. With `sizer` (runSeries) a claim may take several rows: when the first can join
 * a batch they run as one (runBatch); otherwise the first runs alone and the others, only locked, are
 * free again at its commit.
 */
export async function stepOn(
  ctx: EngineContext,
  client: DbClient,
  now: Date,
  target: { instanceId: string; nodeId: string } | undefined,
  pending: ClaimedRow[] | undefined,
  ahead: Ahead | null,
  prepared: PreparedClaim = false,
  sizer?: BatchSizer,
): Promise<StepOnResult> {
  let claimed: ClaimedRow | null = null;
  try {
    // BEGIN, the claim, and a SQL step's savepoint and settings, in one round trip; for a named row of
    // an instance whose graph is not cached (a queue message), its graph too.
    const rows = pending ?? (target && !ctx.graphs.has(target.instanceId) ? await claimAndLoad(ctx, client, now, target) : await beginAndClaim(client, now, target, ctx.stepTimeoutMs, prepared, sizer?.size ?? 1));
    if (!rows.length) {
      await client.query('COMMIT');
      return { claimed: false, results: [] };
    }
    if (sizer && rows.length > 1 && batchable(ctx, rows[0])) return { claimed: true, ...(await runBatch(ctx, client, rows, now, ahead, sizer)) };
    if (sizer && rows.length > 1 && branchBatchable(ctx, rows[0])) return { claimed: true, ...(await runBranches(ctx, client, rows, now, ahead, sizer)) };
    const row = rows[0];
    claimed = row;
    await ctx.hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
    // Whether the next claim may take several rows is decided when it is sent (with this COMMIT), off
    // the path between this claim and its step.
    const next: Ahead | null = sizer && ahead ? (inflight) => (sizer.single(batchable(ctx, row) || branchBatchable(ctx, row)), ahead(inflight)) : ahead;
    const tx: Tx = { owes: new Owed().releaseSavepoint(STEP_SAVEPOINT_NAME), write: null, ahead: next };
    const r = await runClaimed(ctx, client, tx, row, now);
    if ('lease' in r) return { claimed: true, results: [], lease: r.lease };
    return { claimed: true, results: [r], next: tx.next };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // A checkpoint met a node row another worker holds (NOWAIT in df._apply): nothing happened,
    // the claimed row is ready again, and the next try comes after that worker has moved on.
    if (isLockNotAvailable(err) && claimed) {
      const row: ClaimedRow = claimed;
      // Step aside briefly so the same row is not re-run in a tight loop while the holder finishes.
      await stepAside(client, row);
      return { claimed: true, results: [{ kind: 'contended' as const, instanceId: row.instance_id, nodeId: row.id, ready: [] }] };
    }
    throw err;
  }
}

async function claimAndLoad(ctx: EngineContext, client: DbClient, now: Date, target: { instanceId: string; nodeId: string }): Promise<ClaimedRow[]> {
  const { rows, graph } = await beginClaimAndLoad(client, now, target, ctx.stepTimeoutMs);
  if (rows.length && graph?.length) cacheGraph(ctx, rows[0], graph);
  return rows;
}
