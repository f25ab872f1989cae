/**
 * The SQLSTATEs the engine acts on, by name. Some come from PostgreSQL (a NOWAIT lock refused, a
 * deadlock), some from pgflare's own functions (PFS01: a checkpoint's copy of the rows was stale;
 * PFB01: df._apply_many cannot take a change). Each decides a path: do the checkpoint again from a
 * fresh read, undo a batch, or step aside from a contended row.
 */

/** df._apply: a row a checkpoint computed from the engine's copy (snapshot.ts) changed meanwhile. */
export const STALE_COPY = 'PFS01';
/** lock_not_available: a NOWAIT lock (df._apply's probe of a node row another worker holds). */
export const LOCK_NOT_AVAILABLE = '55P03';
/** df._apply_many: a change a batched write does not take. */
export const BATCH_REFUSED = 'PFB01';
export const DEADLOCK_DETECTED = '40P01';
export const SERIALIZATION_FAILURE = '40001';

/**
 * Errors of a batch's write that undo the batch (its rows then run one per transaction): a stale copy,
 * a node row held or moved, a change df._apply_many does not take, a deadlock or serialization failure.
 */
export const BATCH_UNDO: ReadonlySet<string> = new Set([STALE_COPY, LOCK_NOT_AVAILABLE, BATCH_REFUSED, DEADLOCK_DETECTED, SERIALIZATION_FAILURE]);

/** The SQLSTATE of a database error ('' for anything else). */
export function sqlState(err: unknown): string {
  return (typeof err === 'object' && err !== null ? (err as { code?: string }).code : undefined) ?? '';
}

export function isLockNotAvailable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === LOCK_NOT_AVAILABLE;
}
