/**
 * Branch batches: several ready branches of one JOIN run in one claim transaction (issue 20 item 2).
 *
 * One per transaction, each branch paid a claim, a df._apply and a COMMIT, where a drained one-step
 * instance pays a sixteenth of them (batch.ts). Here, as in a batch of one-step instances, one claim takes
 * several rows, their steps run in one message (batch.ts runAll), each under a savepoint of its own with
 * the session restored between steps, and the branches' checkpoints (each a branch write, fan-out.ts)
 * are merged into one df._apply under the instance's shared lock, sent with the COMMIT. The JOIN's count
 * is added to in SQL, once for the batch (0038), so the batch holds the JOIN's row only from that write
 * to its COMMIT.
 *
 * Effects commit exactly once: all with the write, or none. Any error outside a step, a checkpoint that
 * is not a branch write, or a refused write (PFS01 when the batch holds the JOIN's last branch: that
 * branch must fire the JOIN from a fresh read) rolls the whole transaction back; its rows then run one
 * per transaction (the sizer drops to 1), where the single-row path handles them as before.
 */
import type { DbClient } from './db.ts';
import type { Changes } from '../graph/changes.ts';
import { ancestorsOf } from '../graph/graph.ts';
import { scopeOfStamp } from '../graph/scope-ids.ts';
import { substitute } from '../graph/substitute.ts';
import { isNonTransactional } from './executors/sql.ts';
import { otherDatabase } from './executors/other-database.ts';
import { claimedRows, type ClaimedRow } from './queries/claim.ts';
import { CHECKPOINT_SAVEPOINT, claimNextSql } from './queries/checkpoint.ts';
import { literal } from './sql-text.ts';
import { afterCommit, checkpoint, remember } from './checkpoint.ts';
import type { EngineContext } from './context.ts';
import { BATCH_UNDO, LOCK_NOT_AVAILABLE, sqlState } from './errors.ts';
import { isSimpleStatement, runAll, runEach, type BatchSizer, type StepToRun } from './batch.ts';
import type { StepOutcome } from './executors/outcome.ts';
import { othersRunning, type Expectation } from './snapshot.ts';
import { ACTIVE, isRetry, leafEvent, substitutionContext, toOutcome } from './step-policy.ts';
import { Owed, type Ahead, type Tx } from './tx.ts';
import type { RunKind, RunResult } from './types.ts';

/** How often a batch's write is sent when the JOIN's row is contended (55P03) before the batch is undone. */
const WRITE_TRIES = 4;

/**
 * The step text a claimed row runs in a branch batch, or null when it cannot join one: a running SQL
 * leaf under a JOIN, in a running scope, owned by the worker's role, of an instance whose graph and
 * complete copy of the rows (with other leaves running) this engine holds, so its checkpoint is computed without a
 * read; and a step that isSimpleStatement accepts.
 */
export function branchStep(ctx: EngineContext, row: ClaimedRow): string | null {
  if (ctx.batchMax <= 1 || row.owner !== ctx.workerRole || row.node_type !== 'SQL' || otherDatabase(row)) return null;
  if (!ACTIVE.has(row.instance_status) || row.scope_status !== 'running' || row.status !== 'running' || row.stamp === null) return null;
  if (row.state && row.state.resume === true) return null;
  const graph = ctx.graphs.get(row.instance_id);
  // A complete copy, as fromSnapshot needs: from a partial one every checkpoint would read, be no branch
  // write, and undo its batch (seen in a bench run: 987 batches undone for a JOIN of 1 000).
  const snap = ctx.snapshots.get(row.instance_id);
  if (!graph || !snap?.complete || !othersRunning(snap, row.id)) return null;
  if (!ancestorsOf(graph, row.id).some((id) => graph.nodes.get(id)?.type === 'JOIN')) return null;
  const sub = substitute(row.query ?? '', substitutionContext(row), 'sql');
  return sub.ok && !isNonTransactional(sub.text) && isSimpleStatement(sub.text) ? sub.text : null;
}

export const branchBatchable = (ctx: EngineContext, row: ClaimedRow): boolean => branchStep(ctx, row) !== null;

/** What df._apply checks of an assumed node row: its state only without any_state (a JOIN's count). */
const checked = ({ state, ...rest }: Expectation['nodes'][string]) => JSON.stringify(rest.any_state ? rest : { ...rest, state });

/** The branches' writes as one df._apply: changes side by side, the rows each assumed (they must agree). */
export function mergeBranchWrites(writes: { changes: ReturnType<NonNullable<Tx['write']>['changes']>; expect: Expectation }[]) {
  const nodes: unknown[] = [];
  const scopes: unknown[] = [];
  const events: unknown[] = [];
  const expect: Expectation = { instance: writes[0].expect.instance, nodes: {}, scopes: {} };
  for (const w of writes) {
    nodes.push(...w.changes.nodes);
    scopes.push(...w.changes.scopes);
    events.push(...w.changes.events);
    if (JSON.stringify(w.expect.instance) !== JSON.stringify(expect.instance)) return null;
    for (const [k, v] of Object.entries(w.expect.nodes)) {
      if (k in expect.nodes && checked(expect.nodes[k]) !== checked(v)) return null;
      expect.nodes[k] = v;
    }
    for (const [k, v] of Object.entries(w.expect.scopes)) {
      if (k in expect.scopes && JSON.stringify(expect.scopes[k]) !== JSON.stringify(v)) return null;
      expect.scopes[k] = v;
    }
  }
  return { changes: { nodes, scopes, scope_deletes: [], cancel_scopes: [], events, share: true }, expect };
}

/**
 * Runs claimed branches of `rows[0]`'s instance in the open claim transaction, their steps in one message
 * each under its own savepoint, then one merged branch write with the COMMIT (and, with `ahead`, the next
 * claim). Stops at a row that cannot join (another instance, not a branch); rows not run are only locked
 * and free again at the COMMIT. A batch that ran past the sizer's budget halves the next one.
 */
export async function runBranches(
  ctx: EngineContext,
  client: DbClient,
  rows: ClaimedRow[],
  now: Date,
  ahead: Ahead | null,
  sizer: BatchSizer,
): Promise<{ results: RunResult[]; next?: ClaimedRow[] }> {
  const started = Date.now();
  const instanceId = rows[0].instance_id;
  const items: { row: ClaimedRow; tx: Tx; ch: Changes; kind: RunKind }[] = [];
  const owes = new Owed();
  let cut = false;
  const undo = async (why: unknown) => {
    // The copy stays: it describes committed rows, and the single-row path brings it up to date.
    await client.query('ROLLBACK');
    ctx.counts.undone++;
    sizer.batch({ claimed: rows.length, ran: 0, cut: false, overBudget: false, failed: true });
    ctx.log.debug('branch batch undone; its rows run again one per transaction', { rows: rows.length, error: why });
    return { results: [] };
  };
  // The rows that join, decided before anything runs: their steps go in one message (batch.ts runAll).
  const planned: StepToRun[] = [];
  for (const row of rows) {
    const text = row.instance_id === instanceId ? branchStep(ctx, row) : null;
    if (text === null) {
      cut = true;
      break;
    }
    await ctx.hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
    planned.push({ step: row, text });
  }
  let outcomes: StepOutcome[];
  try {
    outcomes = client.queryUntilError ? await runAll(ctx, client.queryUntilError.bind(client), client, planned, owes) : await runEach(ctx, client, planned, owes);
  } catch (err) {
    // A statement outside a step raised, or a round trip failed: the transaction's state is unknown.
    return undo(err);
  }
  const overBudget = Date.now() - started > sizer.budgetMs;
  for (const [i, { step: row }] of planned.entries()) {
    const tx: Tx = { owes, keepsOwed: true, write: null };
    const attempt = row.attempts + 1;
    const events: unknown[] = [];
    const outcome = toOutcome(outcomes[i]);
    const ch = await checkpoint(ctx, client, tx, row, now, leafEvent(ctx, row, outcome, now, attempt, events), {
      events,
      leafChange: { attempts: attempt },
      requireScope: scopeOfStamp(row.stamp!),
    });
    if (!ch || !tx.write?.branch || !tx.write.expect) return undo(new Error(`instance ${instanceId}: a checkpoint that is no branch write`));
    items.push({ row, tx, ch, kind: outcome.kind === 'fail' && isRetry(events) ? 'retry' : 'step' });
  }
  for (const it of items) await ctx.hit('before-commit', { instanceId: it.row.instance_id, nodeId: it.row.id });
  const merged = mergeBranchWrites(items.map(({ tx }) => ({ changes: tx.write!.changes(), expect: tx.write!.expect! })));
  if (!merged) return undo(new Error(`instance ${instanceId}: branches computed from different copies`));
  sizer.batch({ claimed: rows.length, ran: items.length, cut, overBudget, failed: false });
  const next = ahead?.(items.length);
  const apply = `SELECT df._apply(${literal(instanceId)}, ${literal(JSON.stringify(merged.changes))}::jsonb, ${literal(JSON.stringify(merged.expect))}::jsonb)`;
  const tail = `COMMIT${next ? `; ${claimNextSql(next, ctx.stepTimeoutMs)}` : ''}`;
  let res: unknown;
  // Under a savepoint: when the JOIN's row is held by another batch's write and a third session waits
  // behind this one (55P03, df._apply's deadlock guard), the write alone is sent again and the steps'
  // effects stay.
  let head = `${owes.take()}SAVEPOINT ${CHECKPOINT_SAVEPOINT}; `;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await client.query(`${head}${apply}; ${tail}`);
      break;
    } catch (err) {
      if (!BATCH_UNDO.has(sqlState(err))) throw err;
      if (sqlState(err) !== LOCK_NOT_AVAILABLE || attempt >= WRITE_TRIES) return undo(err);
      ctx.counts.branchRewrites++;
      head = `ROLLBACK TO SAVEPOINT ${CHECKPOINT_SAVEPOINT}; `;
    }
  }
  ctx.counts.branchBatched += items.length;
  const results: RunResult[] = [];
  for (const it of items) {
    if (it.tx.written) remember(ctx, it.tx.written);
    results.push(await afterCommit(ctx, it.row, it.kind, it.ch));
  }
  if (!next) return { results };
  const out = res as { rows: ClaimedRow[] }[];
  return { results, next: claimedRows(out[out.length - 2]) };
}
