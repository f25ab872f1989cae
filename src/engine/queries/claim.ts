import type { DbClient } from '../db.ts';
import { literal } from '../sql-text.ts';
import type { GraphRow } from '../../graph/graph.ts';

/**
 * A claimed df.nodes row with what running it needs from its instance and scope. Its fields are the
 * claim's columns, defined once in SQL by df._claim's RETURNS TABLE; CLAIMED_COLUMNS lists them in that
 * order, and test/sql/claim-columns.test.ts checks that list, df._claim_many and PREPARED_CLAIM_SQL
 * against the catalog.
 */
export interface ClaimedRow {
  instance_id: string;
  id: string;
  node_type: string;
  query: string | null;
  result_name: string | null;
  status: string;
  stamp: string | null;
  state: Record<string, unknown> | null;
  attempts: number;
  run_at: Date;
  /** pgflare per-node options (df.retry, df.timeout; database: df.start's other database, 0034). */
  options: { retry?: { max_attempts: number; backoff_seconds: number; max_backoff_seconds: number }; timeout_seconds?: number; database?: string } | null;
  instance_status: string;
  root_node: string;
  label: string | null;
  vars: Record<string, string | null>;
  generation: number;
  owner: string;
  owner_exists: boolean;
  owner_is_superuser: boolean;
  superuser_gate: string;
  named: Record<string, string> | null;
  scope_status: string | null;
  /** The start input of a named workflow (JSON text), read by steps as the named result `input`. */
  input: string | null;
}

/** df._claim's output columns in order: every field of ClaimedRow, and only those (checked by tsc below). */
export const CLAIMED_COLUMNS = [
  'instance_id', 'id', 'node_type', 'query', 'result_name', 'status', 'stamp', 'state', 'attempts', 'run_at', 'options',
  'instance_status', 'root_node', 'label', 'vars', 'generation', 'owner', 'owner_exists', 'owner_is_superuser',
  'superuser_gate', 'named', 'scope_status', 'input',
] as const satisfies readonly (keyof ClaimedRow)[];

/** `true` only while every ClaimedRow field is in CLAIMED_COLUMNS (a missing one fails to type-check). */
export type ClaimedColumnsComplete = [Exclude<keyof ClaimedRow, (typeof CLAIMED_COLUMNS)[number]>] extends [never] ? true : never;
export const CLAIMED_COLUMNS_COMPLETE: ClaimedColumnsComplete = true;

/**
 * The claim statement (df._claim), as text for a multi-statement round trip. `now` has milliseconds and
 * `run_at` microseconds (df.start and df.signal write the database's now()), so `now` is taken to the end
 * of its millisecond: a row made ready earlier in the same millisecond is due, not left for the next poll.
 *
 * The same statement sets a SQL step's settings for the rest of the transaction, and only when it claims
 * a row (they are evaluated per row returned): one statement fewer per step than setting them apart
 * (bench/ W3). The session restore resets them before a checkpoint.
 */
const CLAIMED = { status: 'c.instance_status', id: 'c.instance_id' };

export function claimSql(
  now: Date,
  target: { instanceId: string; nodeId: string } | undefined,
  stepTimeoutMs: number,
  prepared: PreparedClaim = false,
  limit = 1,
): string {
  const at = `(${literal(now.toISOString())}::timestamptz + interval '999 microseconds')`;
  const timeout = Math.max(0, Math.floor(stepTimeoutMs));
  // Several rows for a batch (batch.ts; df._claim_many, 0023).
  if (limit > 1 && !target) return `SELECT c.*, ${claimSettings(`'${timeout}'`, CLAIMED)} AS step_settings FROM df._claim_many(${at}, ${Math.floor(limit)}) c`;
  // The prepared claim takes `now` as microseconds since the Unix epoch, to the end of its millisecond as
  // above: a number, not a timestamp the server must parse (see PREPARED_CLAIM_SQL).
  const micros = now.getTime() * 1000 + 999;
  if (prepared === 'generic' && !target) return `EXECUTE ${PREPARED_CLAIM}(${micros}, '${timeout}')`;
  if (prepared === 'force' && !target) {
    // Under the generic plan cached by prepareClaim; the setting is restored before the step runs.
    return `SET LOCAL plan_cache_mode = force_generic_plan; EXECUTE ${PREPARED_CLAIM}(${micros}, '${timeout}'); RESET plan_cache_mode`;
  }
  const args = [at, ...(target ? [literal(target.instanceId), literal(target.nodeId)] : [])];
  return `SELECT c.*, ${claimSettings(`'${timeout}'`, CLAIMED)} AS step_settings FROM df._claim(${args.join(', ')}) c`;
}

/**
 * A SQL step's settings for the rest of the transaction. `statement_timeout` and `DateStyle` are set only
 * when the session's value differs (it usually does not: 0 and ISO, MDY are the defaults), which leaves
 * the step with the same values: setting a GUC runs its parse and check hooks (bench/claim-cold.ts).
 */
export const claimSettings = (timeout: string, claimed?: { status: string; id: string }) =>
  `concat(set_config('df.in_workflow', 'true', true), ` +
  `CASE WHEN pg_catalog.current_setting('statement_timeout') <> ${timeout} THEN set_config('statement_timeout', ${timeout}, true) END, ` +
  `CASE WHEN pg_catalog.current_setting('datestyle') <> 'ISO, MDY' THEN set_config('datestyle', 'ISO, MDY', true) END` +
  (claimed ? `, ${startingLock(claimed.status, claimed.id)})` : ')');

/**
 * With a claimed row of a pending instance (its activation, whose first step runs in this transaction):
 * a shared advisory lock on the instance for the rest of the transaction, which the status functions read
 * in pg_locks to report the instance as running (migration 0027). Key: (STARTING_LOCK_CLASS, hashtext(id)).
 */
export const STARTING_LOCK_CLASS = 1885824620; // 'pgfl'
const startingLock = (status: string, id: string) =>
  `CASE WHEN ${status} = 'pending' THEN pg_catalog.pg_advisory_xact_lock_shared(${STARTING_LOCK_CLASS}, pg_catalog.hashtext(${id})) END`;

/**
 * The claim that ends an idle wait, as a prepared statement of the session (bench/ W3). Not a call of
 * df._claim but its query, under a generic plan cached beforehand: cold, right after a NOTIFY, that round
 * trip is cheaper than the call's (bench/claim-cold.ts; docs/ARCHITECTURE.md, "The wake-up claim"). Its
 * columns are df._claim's (0022), test/sql/claim-columns.test.ts checks their names and types,
 * test/engine/claim-prepared.test.ts the values row for row. With step limits in
 * force (df._limits_in_force) it claims nothing; the caller, finding nothing, asks whether limits exist and then claims through
 * df._claim, whose rounds apply them (asked only when a wake-up found nothing: returning that flag with
 * every claim made every wake-up slower).
 *
 * Prepared when a loop goes idle, off the critical path, and executed there six times claiming nothing:
 * in plan_cache_mode auto the first five executions of a prepared statement are planned afresh (custom
 * plans), and the sixth settles on the generic plan, which the wake-up's execution then reuses. Should
 * the sixth still be custom (the costs say so), the wake-up runs it under force_generic_plan instead,
 * reset before the step runs (two statements more). Busy loops send df._claim: a SQL step's
 * session restore (DEALLOCATE ALL) drops the statement.
 *
 * `now` is its first parameter as an int8 of microseconds since the Unix epoch, turned into a timestamp by
 * integer-exact arithmetic in the statement: the server parses a number faster than a timestamp literal
 * on this cold path (bench/claim-cold.ts --parts).
 */
const PREPARED_CLAIM = 'pgflare_claim';

export const PREPARED_CLAIM_SQL = `
  SELECT q.instance_id, q.id, q.node_type, q.query, q.result_name, q.status, q.status_details ->> 'execution_id' AS stamp,
         q.state, q.attempts, q.run_at, q.options, i.status AS instance_status, i.root_node, i.label, i.vars, i.generation,
         i.submitted_by::text AS owner, r.oid IS NOT NULL AS owner_exists, coalesce(r.rolsuper, false) AS owner_is_superuser,
         coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off') AS superuser_gate,
         s.named, s.status AS scope_status, i.input::text AS input, ${claimSettings('$2', { status: 'i.status', id: 'q.instance_id' })} AS step_settings
    FROM (SELECT * FROM df.nodes n
           WHERE n.run_at <= timestamptz 'epoch' + $1 * interval '1 microsecond' AND NOT df._limits_in_force()
           ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED) q
    JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = q.instance_id OFFSET 0) i ON true
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
    LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                        WHERE x.instance_id = q.instance_id
                          AND x.scope_id = substring(q.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                       OFFSET 0) s ON true`;

/**
 * (Re)prepares the wake-up claim on this session and caches its generic plan. DEALLOCATE ALL first, as
 * after every SQL step: a statement left from before (one a migration has since made stale) must not
 * survive.
 */
export async function prepareClaim(client: DbClient): Promise<Exclude<PreparedClaim, false>> {
  // Due before 1970: nothing the engine wrote.
  const noop = `EXECUTE ${PREPARED_CLAIM}(0, '0'); `;
  const res = (await client.query(
    `DEALLOCATE ALL; PREPARE ${PREPARED_CLAIM}(int8, text) AS ${PREPARED_CLAIM_SQL}; ` +
      `BEGIN; ${noop.repeat(6)}ROLLBACK; ` +
      `SELECT generic_plans > 0 AS generic FROM pg_catalog.pg_prepared_statements WHERE name = '${PREPARED_CLAIM}'`,
  )) as unknown as { rows: { generic: boolean }[] }[];
  return res[res.length - 1].rows[0]?.generic ? 'generic' : 'force';
}

/** How the claim is sent: df._claim (false), or the session's prepared wake-up claim (see prepareClaim). */
export type PreparedClaim = false | 'generic' | 'force';

/** What follows the claim in its round trip: the savepoint a SQL step runs under (spare for other rows). */
export const STEP_SAVEPOINT = 'SAVEPOINT pgflare_step';

/** The claimed rows from the claim statement's result (without the settings column), oldest first. */
export function claimedRows(result: { rows: (ClaimedRow & { step_settings?: unknown })[] } | undefined): ClaimedRow[] {
  const rows = result?.rows ?? [];
  for (const row of rows) delete row.step_settings;
  return rows;
}

/**
 * Opens the claim transaction and claims in one round trip: `BEGIN; <claim>; SAVEPOINT pgflare_step`.
 * Up to `limit` rows (a batch), else one; none when nothing is due.
 */
export async function beginAndClaim(
  client: DbClient,
  now: Date,
  target: { instanceId: string; nodeId: string } | undefined,
  stepTimeoutMs: number,
  prepared: PreparedClaim = false,
  limit = 1,
): Promise<ClaimedRow[]> {
  const usePrepared = limit <= 1 && !target ? prepared : false;
  const results = (await client.query(`BEGIN; ${claimSql(now, target, stepTimeoutMs, usePrepared, limit)}; ${STEP_SAVEPOINT}`)) as unknown as {
    rows: ClaimedRow[];
  }[];
  // Under force_generic_plan, the claim's result comes after its SET LOCAL.
  const claim = results[usePrepared === 'force' ? 2 : 1];
  if (usePrepared && !claim.rows.length) {
    const { rows } = await client.query<{ limited: boolean }>('SELECT df._limits_in_force() AS limited');
    if (rows[0].limited) {
      // Role limits exist: df._claim applies them.
      await client.query('ROLLBACK');
      return beginAndClaim(client, now, target, stepTimeoutMs, false, limit);
    }
  }
  return claimedRows(claim);
}

/**
 * Rows that are ready (due before `horizon`) for the sweep to dispatch again: instances started from
 * plain SQL, lost messages, expired leases, timers coming due. Oldest first, bounded.
 */
export async function dueRows(client: DbClient, horizon: Date, limit: number): Promise<{ instance_id: string; id: string; run_at: Date }[]> {
  const { rows } = await client.query<{ instance_id: string; id: string; run_at: Date }>(
    'SELECT instance_id, id, run_at FROM df.nodes WHERE run_at <= $1 ORDER BY run_at LIMIT $2',
    [horizon, limit],
  );
  return rows;
}

/** Re-locks a leased row for its checkpoint (lock order: node row, then instance row). */
export async function relockLeased(client: DbClient, instanceId: string, nodeId: string): Promise<{ attempts: number; stamp: string | null; status: string } | null> {
  const { rows } = await client.query<{ attempts: number; stamp: string | null; status: string }>(
    `SELECT attempts, status_details ->> 'execution_id' AS stamp, status FROM df.nodes WHERE instance_id = $1 AND id = $2 FOR UPDATE`,
    [instanceId, nodeId],
  );
  return rows[0] ?? null;
}

/** An instance's static graph as df.nodes rows, with each node's options. */
export type GraphRows = (GraphRow & { options: ClaimedRow['options'] })[];

const GRAPH_COLUMNS = 'id, node_type, query, result_name, left_node, right_node, options';

export async function loadGraphRows(client: DbClient, instanceId: string): Promise<GraphRows> {
  const { rows } = await client.query<GraphRows[number]>(`SELECT ${GRAPH_COLUMNS} FROM df.nodes WHERE instance_id = $1`, [instanceId]);
  return rows;
}

/**
 * beginAndClaim for one named row (a queue message) whose instance graph the engine has not cached:
 * the graph's rows ride in the claim's round trip (a read after the step's savepoint, harmless to the
 * step). Returns no graph when nothing was claimed.
 */
export async function beginClaimAndLoad(
  client: DbClient,
  now: Date,
  target: { instanceId: string; nodeId: string },
  stepTimeoutMs: number,
): Promise<{ rows: ClaimedRow[]; graph: GraphRows | null }> {
  const load = `SELECT ${GRAPH_COLUMNS} FROM df.nodes WHERE instance_id = ${literal(target.instanceId)}`;
  const results = (await client.query(`BEGIN; ${claimSql(now, target, stepTimeoutMs)}; ${STEP_SAVEPOINT}; ${load}`)) as unknown as { rows: unknown[] }[];
  const rows = claimedRows(results[1] as { rows: ClaimedRow[] });
  return { rows, graph: rows.length ? (results[3].rows as GraphRows) : null };
}

/** The first signal named `name` sent to the instance after the wait subscribed (ids above its floor). */
export async function findSignal(client: DbClient, instanceId: string, name: string, afterId: number): Promise<string | null | undefined> {
  const { rows } = await client.query<{ payload: string | null }>(
    `SELECT payload::text AS payload FROM df.signals WHERE instance_id = $1 AND signal_name = $2 AND id > $3 ORDER BY id LIMIT 1`,
    [instanceId, name, afterId],
  );
  return rows.length ? rows[0].payload : undefined;
}
