/**
 * What an open claim transaction carries from one statement to the next. The engine batches statements
 * into as few round trips as it can, so a savepoint release or a session restore is not sent when it is
 * due but owed (Owed) and rendered in front of the transaction's next statement; a checkpoint's write
 * waits for the COMMIT (Write); an activation whose first step continues in the transaction waits to be
 * written with that step's checkpoint (carry).
 */
import type { Changes } from '../graph/changes.ts';
import type { ClaimedRow } from './queries/claim.ts';
import { RESTORE_SESSION } from './executors/sql.ts';
import type { Expectation, Loaded, ReadSet, serialize, Snapshot } from './snapshot.ts';

/** The savepoint a claim opens for its SQL step (queries/claim.ts STEP_SAVEPOINT). */
export const STEP_SAVEPOINT_NAME = 'pgflare_step';

/**
 * Statements the transaction owes before its next one: the release of a step's savepoint and, once the
 * step's SQL ran, the session restore (executors/sql.ts RESTORE_SESSION). take() renders them, in that
 * order, as the prefix of the next statement and clears them.
 */
export class Owed {
  private savepoint: string | null = null;
  private restore = false;

  releaseSavepoint(name: string): this {
    this.savepoint = name;
    return this;
  }

  restoreSession(): this {
    this.restore = true;
    return this;
  }

  /** Anything owed (so the savepoint a claim opened for its step is still open). */
  get pending(): boolean {
    return this.savepoint !== null || this.restore;
  }

  take(): string {
    const out = `${this.savepoint === null ? '' : `RELEASE SAVEPOINT ${this.savepoint}; `}${this.restore ? `${RESTORE_SESSION}; ` : ''}`;
    this.savepoint = null;
    this.restore = false;
    return out;
  }
}

/**
 * A checkpoint's write: df._apply's arguments, and what the transaction still owed before it (`before`,
 * rendered). With `expect` (computed from a Snapshot) a savepoint goes first, so a stale copy (PFS01) can
 * be undone and the checkpoint done again from a fresh read (Tx.redo).
 */
export interface Write {
  instanceId: string;
  before: string;
  changes: () => ReturnType<typeof serialize>;
  expect: Expectation | null;
  /** A JOIN branch's write (fan-out.ts): shared lock, the JOIN's count added to in SQL. */
  branch?: boolean;
}

/**
 * When and how many rows the claim riding on a COMMIT takes, given the steps that COMMIT completes
 * (`inflight`, not yet counted); null: claim nothing (maxSteps reached).
 */
export type Ahead = (inflight: number) => { at: Date; limit: number } | null;

/** An open claim transaction's state between its statements. */
export interface Tx {
  owes: Owed;
  /**
   * A batch sends what the transaction owes itself, in front of its next step or its write: a write
   * computed from a snapshot does not take it (batch.ts).
   */
  keepsOwed?: boolean;
  /** The checkpoint's write, sent with COMMIT (or gathered into a batch's df._apply_many). */
  write: Write | null;
  /** Claim the next rows in the COMMIT's round trip (runSeries). */
  ahead?: Ahead | null;
  /** What that claim returned: rows (their transaction is open), or none (open, nothing claimed). */
  next?: ClaimedRow[];
  /** The checkpoint was computed from a Snapshot: how to do it again from a fresh read (PFS01). */
  redo?: () => Promise<Changes | null>;
  /** What the pending write does, for the Snapshot once it commits. */
  written?: Written;
  /** An activation not yet written: the next checkpoint of this transaction reads through it and writes it. */
  carry?: Changes;
  /**
   * The copy an activation in this transaction made. Kept here, not in the engine's shared map, until the
   * COMMIT: another series claiming a branch the moment the activation commits would otherwise compute
   * from a copy that shows nothing running, be refused (PFS01) and drop the copy for the whole JOIN.
   */
  activated?: { instanceId: string; snap: Snapshot };
}

export interface Written {
  instanceId: string;
  /** The copy to advance: the transaction's own activation copy, else the engine's. */
  copy?: Snapshot;
  pre: Loaded;
  read: ReadSet;
  ch: Changes;
}
