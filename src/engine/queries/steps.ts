/**
 * The engine's small writes to a claimed row outside a checkpoint: withdraw it from the queue, step
 * aside from a contended one, take a lease on it, park a signal wait again, fail a blocked instance,
 * and the read of what an HTTP step may do. Each guards on the row's stamp (and attempts) where a
 * concurrent re-activation could have moved it on.
 */
import type { DbClient } from '../db.ts';
import type { ClaimedRow } from './claim.ts';

/** Takes a claimed row out of the queue, unless it was re-activated (new stamp) in the meantime. */
export async function withdraw(client: DbClient, row: ClaimedRow): Promise<void> {
  await client.query(
    `UPDATE df.nodes SET run_at = NULL, updated_at = now()
        WHERE instance_id = $1 AND id = $2 AND status_details ->> 'execution_id' IS NOT DISTINCT FROM $3 AND attempts = $4`,
    [row.instance_id, row.id, row.stamp, row.attempts],
  );
}

/**
 * The claim's columns from the instance and the row's scope, read again. The claim is one statement
 * under one snapshot, but the node row it returns is the version it locked: under READ COMMITTED, a row
 * that another transaction changed and committed between the snapshot and the lock is re-read (its
 * newest version, rechecked against the claim's WHERE), while the instance and scope are still read as
 * of the snapshot. A one-step instance whose first attempt failed with no backoff is such a row: the
 * claim can return its retry with the instance still 'pending' and no scope yet, which would look like
 * a row to withdraw. A new statement sees what was committed before the lock was granted.
 */
export async function rereadJoined(client: DbClient, row: ClaimedRow): Promise<ClaimedRow> {
  const { rows } = await client.query<Pick<ClaimedRow, 'instance_status' | 'root_node' | 'label' | 'vars' | 'generation' | 'input' | 'named' | 'scope_status'>>(
    `SELECT i.status AS instance_status, i.root_node, i.label, i.vars, i.generation, i.input::text AS input, s.named, s.status AS scope_status
       FROM df.instances i
       LEFT JOIN df.scopes s ON s.instance_id = i.id AND s.scope_id = substring($2::text FROM '^(.*)::[0-9]+$')
      WHERE i.id = $1`,
    [row.instance_id, row.stamp],
  );
  return rows.length ? { ...row, ...rows[0] } : row;
}

/**
 * Moves a contended row (its checkpoint met a node row another worker holds) a little later, so it is
 * not re-run in a tight loop while the holder finishes.
 */
export async function stepAside(client: DbClient, row: ClaimedRow): Promise<void> {
  await client.query(
    `UPDATE df.nodes SET run_at = run_at + interval '250 milliseconds'
            WHERE instance_id = $1 AND id = $2 AND status_details ->> 'execution_id' IS NOT DISTINCT FROM $3 AND run_at IS NOT NULL`,
    [row.instance_id, row.id, row.stamp],
  );
}

/** A lease until `until` (attempts + 1; run_at = the lease's end, so an expired lease is claimable again), and its audit entry. */
export async function leaseRow(client: DbClient, row: ClaimedRow, until: Date): Promise<void> {
  await client.query(
    `UPDATE df.nodes SET attempts = attempts + 1, locked_until = $3, run_at = $3, updated_at = now()
        WHERE instance_id = $1 AND id = $2`,
    [row.instance_id, row.id, until],
  );
  await client.query(`SELECT df._apply($1, $2)`, [row.instance_id, JSON.stringify({ events: [{ node_id: row.id, kind: 'leased', attempt: row.attempts + 1, detail: until.toISOString() }] })]);
}

/** A signal wait woken without its signal: queued again for its deadline (null: only a signal wakes it). */
export async function parkSignalWait(client: DbClient, row: ClaimedRow, deadline: string | null): Promise<void> {
  await client.query('UPDATE df.nodes SET run_at = $3 WHERE instance_id = $1 AND id = $2', [row.instance_id, row.id, deadline]);
}

/** Fails an instance that may not run (ownerBlock, a foreign owner's problem), with the reason as its output. */
export async function failInstance(client: DbClient, instanceId: string, reason: string): Promise<void> {
  await client.query('SELECT df._apply($1, $2)', [instanceId, JSON.stringify({ instance: { status: 'failed', output: reason } })]);
}

/** The HTTP policy in force and whether the owner may use `fn` (df.http or df.http_multipart). */
export async function readHttpAccess(client: DbClient, owner: string, fn: string): Promise<{ mode: string; hosts: string | null; can: boolean }> {
  const { rows } = await client.query<{ mode: string; hosts: string | null; can: boolean }>(
    `SELECT df._setting('http_policy', 'disabled') AS mode, current_setting('pgflare.http_allowed_hosts', true) AS hosts,
                  coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false)
                  OR coalesce(has_function_privilege($1, $2, 'EXECUTE'), false) AS can`,
    [owner.replace(/^"(.*)"$/, '$1').replaceAll('""', '"'), fn],
  );
  return rows[0];
}
