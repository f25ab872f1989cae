import type { DbClient, RawResult } from '../db.ts';
import { buildSqlResult } from '../../graph/sql-result.ts';
import { pgErrorFields, type StepOutcome } from './outcome.ts';
import { capStepResult } from '../limits.ts';

/** Values come back as the server's text, so sql-result.ts can apply pg_durable's type mapping. */
const RAW_TYPES = { getTypeParser: () => (value: string) => value };

/** Statements PostgreSQL refuses inside a transaction block: they take the lease path instead. */
const NON_TRANSACTIONAL =
  /^\s*(vacuum\b|create\s+(unique\s+)?index\s+concurrently\b|drop\s+index\s+concurrently\b|reindex\b[\s\S]*\bconcurrently\b|reindex\s+(system|database)\b|create\s+database\b|drop\s+database\b|alter\s+system\b|create\s+tablespace\b|drop\s+tablespace\b|cluster\s*;?\s*$)/i;

/** A step must not end the engine's transaction under it. */
const TRANSACTION_CONTROL = /^\s*(commit|rollback|begin|start\s+transaction|end|abort|savepoint|release|prepare\s+transaction|commit\s+prepared|rollback\s+prepared)\b/i;

/** The step's error when it is a transaction control statement, else null. */
export function transactionControlError(sql: string): string | null {
  return TRANSACTION_CONTROL.test(stripLeadingComments(sql))
    ? 'SQL execution failed: transaction control statements (COMMIT, ROLLBACK, SAVEPOINT, …) cannot run as a workflow step: each step already runs in its own transaction'
    : null;
}

export function isNonTransactional(sql: string): boolean {
  return NON_TRANSACTIONAL.test(stripLeadingComments(sql));
}

/** The text from its first token on (blanks and comments before it dropped). */
export function stripLeadingComments(sql: string): string {
  let s = sql;
  for (;;) {
    const t = s.replace(/^\s+/, '');
    if (t.startsWith('--')) s = t.slice(t.indexOf('\n') === -1 ? t.length : t.indexOf('\n'));
    else if (t.startsWith('/*')) s = t.slice(blockCommentEnd(t));
    else return t;
  }
}

/** Index just past the block comment `t` starts with (they nest in PostgreSQL), or t.length. */
function blockCommentEnd(t: string): number {
  let depth = 0;
  for (let i = 0; i < t.length - 1; i++) {
    if (t[i] === '/' && t[i + 1] === '*') (depth++, i++);
    else if (t[i] === '*' && t[i + 1] === '/') {
      i++;
      if (--depth === 0) return i + 1;
    }
  }
  return t.length;
}

/**
 * pg_durable runs every node in a session of its own, so nothing a step sets survives it. We reuse
 * pooled sessions, so we undo what a step can leave behind before anything else runs on the session
 * (the checkpoint included): a changed role or session authorization (RESET ROLE alone would not undo
 * SET SESSION AUTHORIZATION on a superuser session; RESET ALL undoes neither), settings, temp tables,
 * prepared statements, cursors, LISTENs and session advisory locks.
 */
export const RESTORE_SESSION =
  'RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; DISCARD TEMP; DEALLOCATE ALL; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all()';

export interface SqlStepOptions {
  /**
   * true: inside the engine's claim transaction, whose preamble already opened savepoint
   * `pgflare_step` and set the step's settings; a failing statement is rolled back to the savepoint
   * alone, and the engine releases it and restores the session before its checkpoint.
   * false: on its own session in autocommit (the lease path); settings and restore happen here.
   */
  inTransaction: boolean;
  /** statement_timeout to set for this statement (ms, 0 = none); null = keep what the preamble set. */
  statementTimeoutMs: number | null;
  /** Result text cap in bytes (limits.ts default when omitted); over it the step fails and is rolled back. */
  maxResultBytes?: number;
}

/**
 * Runs a step of a batch (batch.ts) inside the claim transaction: `head` (what the transaction owes
 * before it: the previous step's savepoint release, the session restore, this step's settings and its
 * savepoint `savepoint`) and the step's SQL in one simple-protocol round trip. Only for text that
 * isSimpleStatement accepts. A failing step is rolled back to its savepoint; an error before the
 * savepoint exists makes that rollback fail too, and the error reaches the caller (the batch is undone).
 */
export async function runBatchedStep(client: DbClient, head: string, sql: string, savepoint: string, maxResultBytes?: number): Promise<StepOutcome> {
  return stepOutcome(
    async () => {
      const out = (await client.query({ text: `${head}${sql}`, rowMode: 'array', types: RAW_TYPES } as never)) as unknown as RawResult | RawResult[];
      return Array.isArray(out) ? out[out.length - 1] : out;
    },
    maxResultBytes,
    () => client.query(`ROLLBACK TO SAVEPOINT ${savepoint}`),
  );
}


/**
 * A step statement's result as its outcome, capped at maxResultBytes (`over`: it was over the cap, and
 * what the statement did must be undone as for one that raised).
 */
export function resultOutcome(res: RawResult, maxResultBytes: number | undefined): { outcome: StepOutcome; over: boolean } {
  const built = buildSqlResult(res.fields ?? [], res.rows ?? []);
  if (!built.ok) return { outcome: { ok: false, error: built.error }, over: false };
  const outcome = capStepResult({ ok: true, resultText: built.text }, maxResultBytes);
  return { outcome, over: !outcome.ok };
}

/** The outcome of a step statement that raised `err`. */
export function failedOutcome(err: unknown): StepOutcome {
  const pg = pgErrorFields(err);
  return { ok: false, error: `SQL execution failed: error returned from database: ${(err as Error).message}`, ...(pg ? { pg } : {}) };
}

/**
 * A step statement's result as its outcome, capped at maxResultBytes. `undo` (null outside a
 * transaction) rolls the statement back when it raised or its result is over the cap.
 */
async function stepOutcome(run: () => Promise<RawResult>, maxResultBytes: number | undefined, undo: (() => Promise<unknown>) | null): Promise<StepOutcome> {
  try {
    const { outcome, over } = resultOutcome(await run(), maxResultBytes);
    // Over the result limit: undo what the statement did, as for a statement that raised.
    if (over && undo) await undo();
    return outcome;
  } catch (err) {
    if (undo) await undo();
    return failedOutcome(err);
  }
}

/**
 * Runs one step's SQL (already substituted) as one statement over the extended protocol, so
 * multi-statement text fails as in pg_durable.
 */
export async function runSqlStep(client: DbClient, sql: string, opts: SqlStepOptions): Promise<StepOutcome> {
  const refused = transactionControlError(sql);
  if (refused) return { ok: false, error: refused };
  const local = opts.inTransaction ? 'true' : 'false';
  const timeout = opts.statementTimeoutMs === null ? null : Math.max(0, Math.floor(opts.statementTimeoutMs));
  if (!opts.inTransaction) {
    await client.query(
      `SELECT set_config('df.in_workflow', 'true', false), set_config('statement_timeout', '${timeout ?? 0}', false), set_config('datestyle', 'ISO, MDY', false)`,
    );
  } else if (timeout !== null) {
    await client.query(`SELECT set_config('statement_timeout', '${timeout}', ${local})`);
  }
  const outcome = await stepOutcome(
    async () => (await client.query({ text: sql, rowMode: 'array', types: RAW_TYPES, queryMode: 'extended' } as never)) as unknown as RawResult,
    opts.maxResultBytes,
    opts.inTransaction ? () => client.query('ROLLBACK TO SAVEPOINT pgflare_step') : null,
  );
  if (!opts.inTransaction) await client.query(RESTORE_SESSION);
  return outcome;
}
