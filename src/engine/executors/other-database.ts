/**
 * SQL steps of an instance started with `df.start(…, database => 'other')` (0034): they run over the
 * worker's connection to that database of the same server (EngineOptions.databases), on the lease path,
 * since their effect there and the checkpoint here cannot commit in one transaction.
 *
 * The owner: the step runs on that connection only when it logs in as the instance's owner (there is no
 * step runner in the other database, and a SET ROLE the step could undo would hand it the worker's
 * rights there). Otherwise 42501, naming the setting that fixes it.
 *
 * Exactly-once: the step's transaction in the other database first inserts a marker row
 * (`pgflare.step_marks_<owner oid>`, key `<instance>:<node>:<stamp>`, the HTTP idempotency key) and
 * stores the result in it before its COMMIT. A re-run after a crash between that COMMIT and the
 * checkpoint finds the marker and returns the stored result without running the SQL again; a second
 * worker running the same step at once (an expired lease) waits on the marker's key and then finds it.
 * The marker is deleted after the checkpoint (forgetMark). Statements that cannot run in a transaction
 * block (VACUUM, …) get no marker: at-least-once, as on the lease path in the df database.
 */
import type { Db, DbClient } from '../db.ts';
import type { ClaimedRow } from '../queries/claim.ts';
import { literal } from '../sql-text.ts';
import { isNonTransactional, RESTORE_SESSION, runSqlStep } from './sql.ts';
import { pgErrorFields, type StepOutcome } from './outcome.ts';

/** The other database a row's steps run in, or null for the df database. */
export function otherDatabase(row: { options: ClaimedRow['options'] }): string | null {
  return row.options?.database ?? null;
}

/** The environment variable that holds the connection string for database `name`. */
export function databaseUrlVariable(name: string): string {
  return `PGFLARE_DATABASE_URL_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** The marker table of each other database's pool (per login role, so one per Db). */
const markTables = new WeakMap<Db, string>();

const markKey = (row: ClaimedRow) => `${row.instance_id}:${row.id}:${row.stamp}`;

/** Runs a leased SQL step (already substituted) in its other database. Never throws. */
export async function runInOtherDatabase(
  databases: ((name: string) => Db | null) | undefined,
  row: ClaimedRow,
  text: string,
  opts: { statementTimeoutMs: number; maxResultBytes?: number },
): Promise<StepOutcome> {
  const name = otherDatabase(row)!;
  const variable = databaseUrlVariable(name);
  const db = databases?.(name) ?? null;
  if (!db) {
    return {
      ok: false,
      error: `pgflare: the worker has no connection to database "${name}": set ${variable} to a connection string for it that logs in as "${row.owner}"`,
      pg: { code: '08001' },
    };
  }
  try {
    return await db.withClient(async (c) => {
      const me = (await c.query<{ u: string; oid: string }>('SELECT current_user::text AS u, (SELECT oid::text FROM pg_catalog.pg_roles WHERE rolname = current_user) AS oid')).rows[0];
      if (me.u !== row.owner) {
        return {
          ok: false as const,
          error: `pgflare: the worker connects to database "${name}" as "${me.u}", so it cannot run steps of "${row.owner}" there: set ${variable} to a connection string that logs in as "${row.owner}"`,
          pg: { code: '42501' },
        };
      }
      if (isNonTransactional(text)) return runSqlStep(c, text, { inTransaction: false, statementTimeoutMs: opts.statementTimeoutMs, maxResultBytes: opts.maxResultBytes });
      const table = markTables.get(db) ?? (await ensureMarkTable(c, db, me.oid));
      if (typeof table !== 'string') return table;
      try {
        return await markedStep(c, table, markKey(row), text, opts);
      } finally {
        await c.query(RESTORE_SESSION);
      }
    });
  } catch (err) {
    const pg = pgErrorFields(err);
    return { ok: false, error: `SQL execution failed: in database "${name}": ${(err as Error).message}`, ...(pg ? { pg } : {}) };
  }
}

/** The step and its marker in one transaction of the other database (see the top). */
async function markedStep(c: DbClient, table: string, key: string, text: string, opts: { statementTimeoutMs: number; maxResultBytes?: number }): Promise<StepOutcome> {
  await c.query('BEGIN');
  try {
    // Waits for a concurrent run of the same step; finds its marker if that one committed.
    const mark = await c.query(`INSERT INTO ${table} (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING key`, [key]);
    if (mark.rowCount === 0) {
      const prev = await c.query<{ result: string }>(`SELECT result FROM ${table} WHERE key = $1`, [key]);
      await c.query('ROLLBACK');
      return { ok: true, resultText: prev.rows[0].result };
    }
    await c.query(`SELECT set_config('datestyle', 'ISO, MDY', true); SAVEPOINT pgflare_step`);
    const out = await runSqlStep(c, text, { inTransaction: true, statementTimeoutMs: opts.statementTimeoutMs, maxResultBytes: opts.maxResultBytes });
    if (!out.ok) {
      await c.query('ROLLBACK');
      return out;
    }
    // A role the step set may not write the marker; the owner does.
    await c.query('RESET ROLE');
    await c.query(`UPDATE ${table} SET result = $2 WHERE key = $1`, [key, out.resultText]);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Creates the owner's marker table in the other database when missing; a refusal as an outcome. */
async function ensureMarkTable(c: DbClient, db: Db, oid: string): Promise<string | StepOutcome> {
  const table = `pgflare.step_marks_${oid}`;
  const { rows } = await c.query<{ db: string; u: string }>('SELECT current_database() AS db, current_user::text AS u');
  try {
    // to_regclass needs USAGE on the schema; CREATE SCHEMA IF NOT EXISTS needs CREATE on the database
    // even when the schema exists, so it is sent only when the schema is missing.
    const found = await c.query<{ t: boolean; s: boolean }>(`SELECT to_regnamespace('pgflare') IS NOT NULL AS s, to_regclass(${literal(table)}) IS NOT NULL AS t`);
    if (!found.rows[0].t) {
      if (!found.rows[0].s) await c.query('CREATE SCHEMA IF NOT EXISTS pgflare');
      await c.query(`CREATE TABLE IF NOT EXISTS ${table} (key text PRIMARY KEY, result text, created_at timestamptz NOT NULL DEFAULT now())`);
    }
  } catch (err) {
    return {
      ok: false,
      error:
        `pgflare: role "${rows[0].u}" cannot use its exactly-once marker table ${table} in database "${rows[0].db}" (${(err as Error).message}): ` +
        `as that database's owner, run CREATE SCHEMA IF NOT EXISTS pgflare; GRANT USAGE, CREATE ON SCHEMA pgflare TO ${rows[0].u}`,
      pg: { code: '42501' },
    };
  }
  markTables.set(db, table);
  return table;
}

/** After the step's checkpoint committed: its marker is no longer needed. Best effort. */
export async function forgetMark(databases: ((name: string) => Db | null) | undefined, row: ClaimedRow): Promise<void> {
  const db = databases?.(otherDatabase(row)!) ?? null;
  const table = db ? markTables.get(db) : undefined;
  if (!db || !table) return;
  await db.withClient((c) => c.query(`DELETE FROM ${table} WHERE key = $1`, [markKey(row)])).catch(() => undefined);
}
