import type { DbClient } from './db.ts';
import { dueRows } from './queries/claim.ts';

/**
 * Liveness and retention, shared by the Node worker and the Workers cron sweep (SPEC §5.3).
 */
export async function heartbeat(client: DbClient, epochId: string): Promise<void> {
  await client.query(
    `INSERT INTO df._worker_epoch (epoch_id) VALUES ($1)
     ON CONFLICT (epoch_id) DO UPDATE SET last_seen_at = now()`,
    [epochId],
  );
  // Epochs nobody has touched for a minute belong to stopped workers.
  await client.query(`DELETE FROM df._worker_epoch WHERE last_seen_at < now() - interval '1 minute'`);
}

export interface RetentionOptions {
  /** Terminal instances older than this are deleted (0 = immediately); null = pg_durable.retention_days (30). */
  retentionDays: number | null;
  /** Only the newest this many terminal instances are kept (SPEC: 10 000). */
  keep: number;
  /** Bound the work of one pass. */
  batch: number;
}

/** Deletes terminal instances past retention (their nodes, scopes, signals and events cascade). */
export async function pruneHistory(client: DbClient, opts: RetentionOptions): Promise<number> {
  const { rowCount } = await client.query(
    `WITH ranked AS (
       SELECT id, coalesce(completed_at, created_at) AS at,
              row_number() OVER (ORDER BY coalesce(completed_at, created_at) DESC, id DESC) AS rank
         FROM df.instances WHERE status IN ('completed', 'failed', 'cancelled')
     ), doomed AS (
       SELECT id FROM ranked
        WHERE rank > $1 OR at < now() - make_interval(days => coalesce($2::int, df._setting('retention_days', '30')::int))
        LIMIT $3
     )
     DELETE FROM df.instances i USING doomed d WHERE i.id = d.id`,
    [opts.keep, opts.retentionDays, opts.batch],
  );
  return rowCount ?? 0;
}

/**
 * The sweep's dispatch pass: hands every ready row due before `now + horizonMs` to `dispatch` again.
 * Messages are hints (a duplicate finds its row taken), so re-sending is harmless; this is what finds
 * instances started from plain SQL, lost messages and expired leases.
 */
export async function sweepDue(
  client: DbClient,
  dispatch: (ready: { instanceId: string; nodeId: string; runAt: Date }[]) => void | Promise<void>,
  opts: { now: Date; horizonMs: number; limit: number },
): Promise<number> {
  const rows = await dueRows(client, new Date(opts.now.getTime() + opts.horizonMs), opts.limit);
  if (rows.length) await dispatch(rows.map((r) => ({ instanceId: r.instance_id, nodeId: r.id, runAt: r.run_at })));
  return rows.length;
}

/** The schema version this code needs vs what the database has; a worker refuses to run on a mismatch. */
export async function checkSchemaVersion(client: DbClient, expected: number): Promise<void> {
  const { rows } = await client.query<{ v: number | null }>(
    "SELECT CASE WHEN to_regclass('df._migrations') IS NULL THEN NULL ELSE (SELECT max(version) FROM df._migrations) END AS v",
  );
  const v = rows[0]?.v ?? null;
  if (v === null) throw new Error('schema df is not installed in this database: run `pgflare migrate` first');
  if (v < expected) throw new Error(`schema df is at migration ${v}, this pgflare needs ${expected}: run \`pgflare migrate\``);
  if (v > expected) throw new Error(`schema df is at migration ${v}, newer than this pgflare (${expected}): upgrade the worker`);
}
