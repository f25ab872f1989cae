/**
 * Batches: several one-step instances run in one claim transaction (runBatch, 0023).
 *
 * A one-step instance (its root is a SQL leaf) is activated, run and completed by a single checkpoint that
 * the engine computes from the claimed row alone. Run one per transaction, each pays a claim, a df._apply
 * and a COMMIT; in a batch, one df._claim_many takes up to `size` rows, all their steps go in one message,
 * each under a savepoint of its own with the session restored after it, and one df._apply_many writes
 * every checkpoint before one COMMIT. Effects still commit exactly once: all together, or (any error outside a step)
 * none, after which the rows run again one per transaction.
 *
 * This file holds which rows may join a batch (batchStep; isSimpleStatement: which step text may share a
 * round trip with the statements around it), how big the next batch is (BatchSizer), and the batch
 * itself (runBatch).
 */
import type { DbClient } from './db.ts';
import type { Changes } from '../graph/changes.ts';
import { scopeOfStamp } from '../graph/scope-ids.ts';
import { isSingleStatement } from './executors/runner.ts';
import { failedOutcome, RESTORE_SESSION, resultOutcome, runBatchedStep, stripLeadingComments } from './executors/sql.ts';
import type { StepOutcome } from './executors/outcome.ts';
import { claimedRows, claimSettings, type ClaimedRow } from './queries/claim.ts';
import { applyManySql, claimNextSql } from './queries/checkpoint.ts';
import { activateAndContinue, oneStepText } from './activate.ts';
import { afterCommit, checkpoint, remember } from './checkpoint.ts';
import { forget, type EngineContext } from './context.ts';
import { BATCH_UNDO, sqlState } from './errors.ts';
import { isRetry, leafEvent, ownTimeout, timeoutFor, toOutcome } from './step-policy.ts';
import { Owed, STEP_SAVEPOINT_NAME, type Ahead, type Tx } from './tx.ts';
import type { RunKind, RunResult } from './types.ts';

/** Default largest batch of the Node worker (PGFLARE_BATCH_SIZE; 1 = one instance per transaction). */
export const DEFAULT_BATCH_SIZE = 32;

/** A batch stops taking steps once it has run this long, so a slow step holds few others (ms). */
export const BATCH_BUDGET_MS = 50;

const FIRST_WORD = /^(select|insert|update|delete|with|values|table)\b/i;

/**
 * True when `sql` is certainly one plain statement (DML or a query) that can follow other statements in
 * one simple-protocol message: one statement by the runner's scanner (isSingleStatement: quotes, nested
 * comments and dollar quotes), beginning with one of FIRST_WORD, and without a backslash, whose meaning
 * in a string depends on standard_conforming_strings (a role's setting may turn it off). Anything else
 * runs alone over the extended protocol, which refuses multi-statement text as pg_durable does, so a
 * wrong "false" costs only a round trip.
 */
export function isSimpleStatement(sql: string): boolean {
  return !sql.includes('\\') && isSingleStatement(sql) && FIRST_WORD.test(stripLeadingComments(sql));
}

/**
 * How many rows the next claim asks for. Starts at 1 (one row per transaction, as without batches) and
 * grows only while claims keep finding one-step instances whose steps are quick: doubled after a batch
 * that ran all its rows within the budget, back to 1 at a row that cannot join a batch or a slow step,
 * to the rows it managed when a batch ran out of budget. So chains, composite graphs and slow steps
 * run exactly as before, and a queue of quick one-step instances is drained `max` at a time.
 */
export class BatchSizer {
  size = 1;
  constructor(
    readonly max: number,
    /** A batch that ran longer than this (ms) counts as over budget. */
    readonly budgetMs = BATCH_BUDGET_MS,
  ) {}

  /**
   * A claim that found one row: one that could have joined a batch (true) or not. A claim for more that
   * found one (a short queue, or a claim cut to a series' last step) keeps the size, as batch() does.
   */
  single(batchable: boolean): void {
    this.size = batchable && this.max > 1 ? Math.max(2, this.size) : 1;
  }

  /**
   * A batch ended: `ran` rows ran of the `claimed`; `cut` = it stopped at a row that cannot join a batch;
   * `overBudget` = it stopped because it ran too long; `failed` = its write failed and it was undone.
   */
  batch(r: { claimed: number; ran: number; cut: boolean; overBudget: boolean; failed: boolean }): void {
    if (r.failed) this.size = 1;
    else if (r.overBudget) this.size = Math.max(1, r.ran >> 1);
    else if (r.cut) this.size = Math.max(1, r.ran);
    else if (r.ran === r.claimed && r.claimed >= this.size) this.size = Math.min(this.max, this.size * 2);
  }
}

/**
 * The step text a row runs in a batch, or null when it cannot join one: only an instance's first claim
 * of a SQL root (a one-step instance, whose whole run is one checkpoint computed from the claimed row),
 * owned by the worker's role (others run through their step runner), unblocked, and a step that
 * isSimpleStatement accepts (a DML first word: never transaction control) and that runs inside a
 * transaction.
 */
export function batchStep(ctx: EngineContext, row: ClaimedRow): string | null {
  if (ctx.batchMax <= 1 || row.owner !== ctx.workerRole) return null;
  const text = oneStepText(ctx, row);
  return text !== null && isSimpleStatement(text) ? text : null;
}

export const batchable = (ctx: EngineContext, row: ClaimedRow): boolean => batchStep(ctx, row) !== null;

/** A claimed step and its substituted text, as runAll/runEach send it (branch-batch.ts too). */
export interface StepToRun {
  step: ClaimedRow;
  text: string;
}

/** A row of a batch: its activation (`tx`), the step it continues with, and that step's text. */
interface Planned extends StepToRun {
  row: ClaimedRow;
  tx: Tx;
}

/** The savepoint a batch's i-th step runs under (the first row's is the one the claim opened). */
const savepointOf = (i: number) => (i === 0 ? STEP_SAVEPOINT_NAME : `${STEP_SAVEPOINT_NAME}_${i}`);
const RESTORE_STATEMENTS = RESTORE_SESSION.split(';').length;

/** A step's settings and savepoint, sent in front of it (the first row's came with the claim). */
function stepHead(ctx: EngineContext, step: ClaimedRow, i: number): { sql: string; statements: number } {
  if (i > 0) return { sql: `SELECT ${claimSettings(`'${timeoutFor(ctx, step)}'`)}; SAVEPOINT ${savepointOf(i)}; `, statements: 2 };
  const own = ownTimeout(ctx, step);
  return own === null ? { sql: '', statements: 0 } : { sql: `SELECT set_config('statement_timeout', '${own}', true); `, statements: 1 };
}

/**
 * Runs claimed one-step instances in the open claim transaction: each is activated, then all their steps
 * run in one simple-protocol message, each under a savepoint of its own with the session restored after
 * it; then one df._apply_many writes every checkpoint with the COMMIT (and, with `ahead`, the next
 * claim). Three round trips for the batch: claim, steps, write. The savepoints nest (none is released
 * before the write), so when a step raises or goes over the result cap, which of them did is unknown
 * but everything since the claim's savepoint can be undone: the steps then run again one round trip
 * each (runEach), each failure rolled back to its own savepoint. It stops at a row that cannot join
 * (`rows[0]` can); the rows it did not run are only locked and are free again at the COMMIT. When the
 * write fails (a concurrent df.cancel made a copy stale, a node row is held) the whole transaction is
 * rolled back, nothing of it happened, and its rows run again one per transaction.
 */
export async function runBatch(
  ctx: EngineContext,
  client: DbClient,
  rows: ClaimedRow[],
  now: Date,
  ahead: Ahead | null,
  sizer: BatchSizer,
): Promise<{ results: RunResult[]; next?: ClaimedRow[] }> {
  const started = Date.now();
  // What the transaction owes before its next statement (a savepoint release, the session restore).
  const owes = new Owed();
  const planned: Planned[] = [];
  const undo = async (why: unknown) => {
    await client.query('ROLLBACK');
    for (const r of rows) forget(ctx, r.instance_id);
    for (const p of planned) forget(ctx, p.step.instance_id);
    ctx.counts.undone++;
    sizer.batch({ claimed: rows.length, ran: 0, cut: false, overBudget: false, failed: true });
    ctx.log.warn('batch undone; its rows run again one per transaction', { rows: rows.length, error: why });
    return { results: [] };
  };
  let cut = false;
  for (const row of rows) {
    const text = batchStep(ctx, row);
    if (text === null) {
      cut = true;
      break;
    }
    await ctx.hit('after-claim', { instanceId: row.instance_id, nodeId: row.id });
    const tx: Tx = { owes, keepsOwed: true, write: null };
    // The activation, from the claimed row alone (no read), carried into the step's checkpoint.
    const { next: step } = await activateAndContinue(ctx, client, tx, row, now);
    if (!step) return undo(new Error(`instance ${row.instance_id}: no first step to continue with`));
    await ctx.hit('after-claim', { instanceId: step.instance_id, nodeId: step.id });
    planned.push({ row, step, tx, text });
  }
  let outcomes: StepOutcome[];
  try {
    outcomes = client.queryUntilError ? await runAll(ctx, client.queryUntilError.bind(client), client, planned, owes) : await runEach(ctx, client, planned, owes);
  } catch (err) {
    // A statement outside a step raised, or a round trip failed: the transaction's state is unknown.
    return undo(err);
  }
  const overBudget = Date.now() - started > sizer.budgetMs;
  const items: { row: ClaimedRow; tx: Tx; ch: Changes; kind: RunKind }[] = [];
  for (const [i, { row, step, tx }] of planned.entries()) {
    const attempt = step.attempts + 1;
    const events: unknown[] = [];
    const ch = await checkpoint(ctx, client, tx, step, now, leafEvent(ctx, step, toOutcome(outcomes[i]), now, attempt, events), {
      events,
      leafChange: { attempts: attempt },
      requireScope: scopeOfStamp(step.stamp!),
    });
    if (!ch || !tx.write || ch.scopeDeletes.size || ch.cancelScopes.length) {
      return undo(new Error(`instance ${row.instance_id}: its checkpoint cannot join a batch`));
    }
    items.push({ row: step, tx, ch, kind: isRetry(events) ? 'retry' : 'step' });
  }
  for (const it of items) await ctx.hit('before-commit', { instanceId: it.row.instance_id, nodeId: it.row.id });
  const payload = items.map(({ tx }) => ({ id: tx.write!.instanceId, changes: tx.write!.changes(), ...(tx.write!.expect ? { expect: tx.write!.expect } : {}) }));
  sizer.batch({ claimed: rows.length, ran: items.length, cut, overBudget, failed: false });
  const next = ahead?.(items.length);
  let res: unknown;
  try {
    res = await client.query(applyManySql(owes.take(), payload, next ? claimNextSql(next, ctx.stepTimeoutMs) : null));
  } catch (err) {
    if (!BATCH_UNDO.has(sqlState(err))) throw err;
    return undo(err);
  }
  if (items.length > 1) ctx.counts.batched += items.length;
  const results: RunResult[] = [];
  for (const it of items) {
    if (it.tx.written) remember(ctx, it.tx.written);
    results.push(await afterCommit(ctx, it.row, it.kind, it.ch));
  }
  if (!next) return { results };
  const out = res as { rows: ClaimedRow[] }[];
  return { results, next: claimedRows(out[out.length - 2]) };
}

/**
 * Every step in one message: head, step, session restore, for each. The savepoints stay open, nested,
 * until the write releases the outermost (the claim's) with them. A step that raises ends the message
 * there (the results before it came back): the next message rolls back to that step's savepoint,
 * restores the session and sends the steps after it. A result over the cap is undone the same way,
 * which undoes the steps after it in its message too: they are sent again.
 */
export async function runAll(
  ctx: EngineContext,
  send: NonNullable<DbClient['queryUntilError']>,
  client: DbClient,
  planned: readonly StepToRun[],
  owes: Owed,
): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  let prefix = { sql: '', statements: 0 };
  while (outcomes.length < planned.length) {
    const from = outcomes.length;
    let text = prefix.sql;
    let total = prefix.statements;
    const at: number[] = [];
    for (let i = from; i < planned.length; i++) {
      const head = stepHead(ctx, planned[i].step, i);
      at.push(total + head.statements);
      total += head.statements + 1 + RESTORE_STATEMENTS;
      // The newline ends a trailing `--` comment of the step's text.
      text += `${head.sql}${planned[i].text}\n; ${RESTORE_SESSION}; `;
    }
    const { results, error } = await send(text);
    let failed: number | null = null;
    for (const [j, index] of at.entries()) {
      if (index >= results.length) break;
      const { outcome, over } = resultOutcome(results[index], ctx.maxResultBytes);
      outcomes.push(outcome);
      if (over) {
        failed = from + j;
        break;
      }
    }
    if (failed === null && error !== undefined) {
      // Only a step may raise here; anything else leaves the transaction in a state not known.
      if (at[outcomes.length - from] !== results.length) throw error;
      failed = outcomes.length;
      outcomes.push(failedOutcome(error));
    }
    if (failed === null) {
      if (results.length !== total) throw new Error(`a batch's message returned ${results.length} results, not ${total}`);
      prefix = { sql: '', statements: 0 };
      break;
    }
    ctx.counts.resent++;
    outcomes.length = failed + 1;
    prefix = { sql: `ROLLBACK TO SAVEPOINT ${savepointOf(failed)}; ${RESTORE_SESSION}; `, statements: 1 + RESTORE_STATEMENTS };
  }
  // The last step failed: its undo goes alone.
  if (prefix.sql) await client.query(prefix.sql);
  owes.releaseSavepoint(STEP_SAVEPOINT_NAME);
  return outcomes;
}

/**
 * The steps one round trip each (after runAll's message failed and was undone): each sends what the
 * step before it owes (its savepoint release, the session restore), then its head and itself; a step
 * that raises is rolled back to its own savepoint.
 */
export async function runEach(ctx: EngineContext, client: DbClient, planned: readonly StepToRun[], owes: Owed): Promise<StepOutcome[]> {
  const outcomes: StepOutcome[] = [];
  for (const [i, { step, text }] of planned.entries()) {
    const head = `${owes.take()}${stepHead(ctx, step, i).sql}`;
    outcomes.push(await runBatchedStep(client, head, text, savepointOf(i), ctx.maxResultBytes));
    owes.releaseSavepoint(savepointOf(i)).restoreSession();
  }
  return outcomes;
}
