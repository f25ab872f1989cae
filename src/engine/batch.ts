/**
 * Batches: several one-step instances run in one claim transaction (engine.ts runBatch, 0023).
 *
 * A one-step instance (its root is a SQL leaf) is activated, run and completed by a single checkpoint that
 * the engine computes from the claimed row alone. Run one per transaction, each pays a claim, a df._apply
 * and a COMMIT; in a batch, one df._claim_many takes up to `size` rows, each step runs under a savepoint
 * of its own with the session restored between steps, and one df._apply_many writes every checkpoint
 * before one COMMIT. Effects still commit exactly once: all together, or (any error outside a step)
 * none, after which the rows run again one per transaction.
 *
 * This file holds the pure parts: which step text may share a round trip with the statements around it,
 * and how big the next batch is.
 */

import { isSingleStatement } from './executors/runner.ts';
import { stripLeadingComments } from './executors/sql.ts';

/** Default largest batch of the Node worker (PGFLARE_BATCH_SIZE; 1 = one instance per transaction). */
export const DEFAULT_BATCH_SIZE = 16;

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
  constructor(readonly max: number) {}

  /** A single-row claim found a row that could have joined a batch (true) or not. */
  single(batchable: boolean): void {
    this.size = batchable && this.max > 1 ? 2 : 1;
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
