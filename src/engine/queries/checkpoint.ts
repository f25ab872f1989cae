/**
 * The texts of a checkpoint's round trips. They go over the simple protocol, several statements to a
 * message (what the transaction owes, the read or the write, COMMIT, the next claim), so values are
 * inlined as literals (sql-text.ts) rather than bound.
 */
import { literal, textArray } from '../sql-text.ts';
import { claimSql, STEP_SAVEPOINT } from './claim.ts';
import type { ReadSet } from '../snapshot.ts';
import type { Write } from '../tx.ts';

/** The savepoint a write computed from a snapshot is sent under, so a stale copy (PFS01) can be undone. */
export const CHECKPOINT_SAVEPOINT = 'pgflare_cp';

/** `before` (what the transaction owes), then lock the instance and read the rows a checkpoint needs. */
export function lockAndLoadSql(before: string, instanceId: string, read: ReadSet): string {
  return `${before}SELECT df._lock_and_load(${literal(instanceId)}, ${textArray(read.nodes)}::varchar[], ${textArray(read.scopes)}) AS s`;
}

/** A checkpoint's write; with `expect`, under the checkpoint savepoint and checked by df._apply. */
export function applySql(w: Write): string {
  const changes = `${literal(w.instanceId)}, ${literal(JSON.stringify(w.changes()))}::jsonb`;
  return w.expect
    ? `${w.before}SAVEPOINT ${CHECKPOINT_SAVEPOINT}; SELECT df._apply(${changes}, ${literal(JSON.stringify(w.expect))}::jsonb)`
    : `${w.before}SELECT df._apply(${changes})`;
}

/** A batch's writes, one df._apply_many, then COMMIT and (`claimNext`) the next claim. */
export function applyManySql(before: string, payload: unknown[], claimNext: string | null): string {
  return `${before}SELECT df._apply_many(${literal(JSON.stringify(payload))}::jsonb); COMMIT${claimNext ? `; ${claimNext}` : ''}`;
}

/** The write (if any) and COMMIT, then (`claimNext`) the next claim. */
export function commitSql(apply: string | null, claimNext: string | null): string {
  const head = `${apply ? `${apply}; ` : ''}COMMIT`;
  return claimNext ? `${head}; ${claimNext}` : head;
}

/** The next claim transaction, opened in a COMMIT's round trip: BEGIN, the claim, the step's savepoint. */
export function claimNextSql(next: { at: Date; limit: number }, stepTimeoutMs: number): string {
  return `BEGIN; ${claimSql(next.at, undefined, stepTimeoutMs, false, next.limit)}; ${STEP_SAVEPOINT}`;
}
