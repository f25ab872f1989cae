/**
 * SQL steps of instances owned by another role than the worker's (DESIGN 11): run through that role's
 * SECURITY DEFINER step runner (`df._run_<oid>`, migrations/0015_runners.sql) inside the engine's claim
 * transaction and savepoint, so exactly-once is the same as on the direct path.
 *
 * The runner fetches every row as the owner and returns each as its record text; the worker then
 * FETCHes the exhausted cursor `pgflare_step_rows` for the column names and type OIDs alone. Both go to
 * buildSqlResult exactly as a directly run statement's fields and text values do.
 */
import type { DbClient } from '../db.ts';
import { buildSqlResult } from '../../graph/sql-result.ts';
import { literal } from '../sql-text.ts';
import { transactionControlError } from './sql.ts';
import type { StepOutcome } from './outcome.ts';

const RAW_TYPES = { getTypeParser: () => (value: string) => value };

/** Raised by df._run_step when the step may not run at all (no runner, no usage, no LOGIN, …). */
const NOT_RUN = 'PF010';

/** Why another role's instance may not run here, or null (checked at the instance's first claim). */
export async function foreignOwnerProblem(client: DbClient, owner: string): Promise<string | null> {
  const { rows } = await client.query<{ p: string | null }>('SELECT df._runner_problem($1::regrole) AS p', [owner]);
  return rows[0].p;
}

/** Statements that must run outside a transaction block cannot go through a runner (a function). */
export function nonTransactionalForeignError(owner: string, worker: string): string {
  return `pgflare: statements that cannot run inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, CREATE DATABASE, …) run only for instances of the worker's own role "${worker}": steps of "${owner}" run through its step runner, a function, which always runs inside a transaction`;
}

/**
 * Runs one substituted step statement as `owner` through its runner. Inside the claim transaction,
 * after the preamble opened savepoint `pgflare_step`; on failure rolls back to it, like runSqlStep.
 */
export async function runSqlStepAsOwner(
  client: DbClient,
  owner: string,
  sql: string,
  opts: { statementTimeoutMs: number | null },
): Promise<StepOutcome> {
  const refused = transactionControlError(sql);
  if (refused) return { ok: false, error: refused };
  // The direct path sends the text over the extended protocol, which refuses several statements; the
  // runner's EXECUTE would run them all.
  if (!isSingleStatement(sql)) {
    return { ok: false, error: 'SQL execution failed: error returned from database: cannot insert multiple commands into a prepared statement' };
  }
  if (opts.statementTimeoutMs !== null) {
    await client.query(`SELECT set_config('statement_timeout', '${Math.max(0, Math.floor(opts.statementTimeoutMs))}', true)`);
  }
  try {
    const res = (await client.query({
      text: `SELECT df._run_step(${literal(owner)}::regrole, ${literal(sql)})::text AS r; FETCH ALL FROM pgflare_step_rows`,
      rowMode: 'array',
      types: RAW_TYPES,
    } as never)) as unknown as { fields?: { name: string; dataTypeID: number }[]; rows: (string | null)[][] }[];
    const texts = JSON.parse(res[0].rows[0][0] as string) as string[];
    const fields = res[1].fields ?? [];
    const rows = texts.map((t) => parseRecord(t, fields.length));
    const built = buildSqlResult(fields, rows);
    return built.ok ? { ok: true, resultText: built.text } : { ok: false, error: built.error };
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT pgflare_step');
    const e = err as { code?: string; message: string };
    if (e.code === NOT_RUN) return { ok: false, error: e.message };
    return { ok: false, error: `SQL execution failed: error returned from database: ${e.message}` };
  }
}

/**
 * The column texts of a record's text form (record_out): `(a,"b c",,"")` → ['a', 'b c', null, ''].
 * `n` is the column count, which tells `()` (one NULL column) from a row without columns.
 */
export function parseRecord(text: string, n: number): (string | null)[] {
  if (text.length < 2 || text[0] !== '(' || text[text.length - 1] !== ')') throw new Error(`not a record: ${text.slice(0, 40)}`);
  if (n === 0) return [];
  const out: (string | null)[] = [];
  let i = 1;
  for (;;) {
    const ch = text[i];
    if (ch === ',' || ch === ')') out.push(null);
    else {
      let v = '';
      let quoted = false;
      while (i < text.length) {
        const c = text[i];
        if (quoted) {
          if (c === '"' && text[i + 1] === '"') {
            v += '"';
            i += 2;
          } else if (c === '"') {
            quoted = false;
            i++;
          } else if (c === '\\') {
            v += text[i + 1];
            i += 2;
          } else {
            v += c;
            i++;
          }
        } else if (c === '"') {
          quoted = true;
          i++;
        } else if (c === '\\') {
          v += text[i + 1];
          i += 2;
        } else if (c === ',' || c === ')') break;
        else {
          v += c;
          i++;
        }
      }
      out.push(v);
    }
    if (text[i] === ')') break;
    i++; // the comma
  }
  if (out.length !== n) throw new Error(`record has ${out.length} columns, expected ${n}`);
  return out;
}

/**
 * True when the text holds at most one statement: nothing but blanks, comments and semicolons after the
 * first top-level semicolon. Knows quoted strings (also E'' with backslash escapes), quoted identifiers,
 * dollar quotes and nested block comments, so a semicolon inside them does not count.
 */
export function isSingleStatement(sql: string): boolean {
  let i = 0;
  let seenEnd = false;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') (depth++, (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') (depth--, (i += 2));
        else i++;
      }
      continue;
    }
    if (/\s/.test(c) || c === ';') {
      if (c === ';') seenEnd = true;
      i++;
      continue;
    }
    if (seenEnd) return false;
    if (c === "'") {
      const prev = sql[i - 1];
      const escapes = (prev === 'e' || prev === 'E') && !isIdentChar(sql[i - 2]);
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === '$' && !isIdentChar(sql[i - 1])) {
      const m = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (m) {
        const close = sql.indexOf(m[0], i + m[0].length);
        i = close === -1 ? n : close + m[0].length;
        continue;
      }
    }
    if (isIdentChar(c)) {
      while (i < n && isIdentChar(sql[i])) i++;
      continue;
    }
    i++;
  }
  return true;
}

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}
