import type { DbClient } from '../db.ts';

/** A claimed df.nodes row with what running it needs from its instance and scope. */
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
  /** pgflare per-node options (df.retry, df.timeout). */
  options: { retry?: { max_attempts: number; backoff_seconds: number; max_backoff_seconds: number }; timeout_seconds?: number } | null;
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
}

/**
 * Claims the most overdue ready row: the partial index nodes_ready_idx holds only rows with run_at
 * set, SKIP LOCKED lets concurrent workers take different rows, and the row lock is the claim. The
 * scope's named results ride along, since a step substitutes them before it runs.
 */
const SELECT_CLAIMED = `
SELECT n.instance_id, n.id, n.node_type, n.query, n.result_name, n.status,
       n.status_details ->> 'execution_id' AS stamp, n.state, n.attempts, n.run_at, n.options,
       i.status AS instance_status, i.root_node, i.label, i.vars, i.generation,
       i.submitted_by::text AS owner, r.oid IS NOT NULL AS owner_exists, coalesce(r.rolsuper, false) AS owner_is_superuser,
       df._setting('enable_superuser_instances', 'off') AS superuser_gate,
       s.named, s.status AS scope_status
  FROM c
  JOIN df.nodes n ON n.instance_id = c.instance_id AND n.id = c.id
  JOIN df.instances i ON i.id = n.instance_id
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
  LEFT JOIN df.scopes s ON s.instance_id = n.instance_id
        AND s.scope_id = substr(n.status_details ->> 'execution_id', 1,
                                length(n.status_details ->> 'execution_id') - position(':' IN reverse(n.status_details ->> 'execution_id')) - 1)`;

const CLAIM = `
WITH c AS (
  SELECT n.instance_id, n.id FROM df.nodes n
   WHERE n.run_at <= $1
   ORDER BY n.run_at
   LIMIT 1
   FOR UPDATE SKIP LOCKED
)${SELECT_CLAIMED}`;

/** A queue message names one node: claim exactly that row, if it is still due and nobody holds it. */
const CLAIM_TARGET = `
WITH c AS (
  SELECT n.instance_id, n.id FROM df.nodes n
   WHERE n.instance_id = $2 AND n.id = $3 AND n.run_at <= $1
   FOR UPDATE SKIP LOCKED
)${SELECT_CLAIMED}`;

export async function claimReady(client: DbClient, now: Date, target?: { instanceId: string; nodeId: string }): Promise<ClaimedRow | null> {
  const { rows } = target
    ? await client.query<ClaimedRow>(CLAIM_TARGET, [now, target.instanceId, target.nodeId])
    : await client.query<ClaimedRow>(CLAIM, [now]);
  return rows[0] ?? null;
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

export async function loadGraphRows(client: DbClient, instanceId: string) {
  const { rows } = await client.query<{ id: string; node_type: string; query: string | null; result_name: string | null; left_node: string | null; right_node: string | null }>(
    'SELECT id, node_type, query, result_name, left_node, right_node FROM df.nodes WHERE instance_id = $1',
    [instanceId],
  );
  return rows;
}

/** The first signal named `name` sent to the instance after the wait subscribed (ids above its floor). */
export async function findSignal(client: DbClient, instanceId: string, name: string, afterId: number): Promise<string | null | undefined> {
  const { rows } = await client.query<{ payload: string | null }>(
    `SELECT payload::text AS payload FROM df.signals WHERE instance_id = $1 AND signal_name = $2 AND id > $3 ORDER BY id LIMIT 1`,
    [instanceId, name, afterId],
  );
  return rows.length ? rows[0].payload : undefined;
}
