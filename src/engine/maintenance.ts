/**
 * Maintenance shared by both runtimes: the schema check, the heartbeat (pg_durable's worker updates
 * df._worker_epoch every ~5 s) and the history prune (pg_durable's reconcile pass: terminal instances
 * beyond the newest 10 000 or older than retention_days go; running ones never). The Node worker runs
 * them on its timers (src/runtime/node/worker.ts), the Workers cron sweep once a minute
 * (src/runtime/worker/handlers.ts); the SQL and the lock are here, once.
 */
import { inTransaction, type DbClient } from './db.ts';

export type SchemaState = 'ok' | 'behind' | 'ahead' | 'missing';

export interface SchemaCheck {
  state: SchemaState;
  /** The newest migration applied to the database; null when schema df is not installed. */
  database: number | null;
  /** The migrations this code bundles. */
  expected: number;
  /** What to do about a mismatch; null when the state is 'ok'. */
  message: string | null;
}

/** Compares df._migrations with the `expected` migration count of this code. */
export async function checkSchema(client: DbClient, expected: number): Promise<SchemaCheck> {
  // Two statements: one naming df._migrations does not even parse where the table is missing.
  const { rows: table } = await client.query<{ t: string | null }>(`SELECT to_regclass('df._migrations')::text AS t`);
  const v = table[0]?.t ? ((await client.query<{ v: number | null }>('SELECT max(version) AS v FROM df._migrations')).rows[0]?.v ?? null) : null;
  const at = (state: SchemaState, message: string | null): SchemaCheck => ({ state, database: v, expected, message });
  if (v === null || v === 0) return at('missing', 'schema df is not installed in this database: run `pgflare migrate` first');
  if (v < expected) return at('behind', `schema df is at migration ${v}, this pgflare needs ${expected}: run \`pgflare migrate\``);
  if (v > expected) return at('ahead', `schema df is at migration ${v}, newer than this pgflare (${expected}): upgrade the worker`);
  return at('ok', null);
}

export class SchemaMismatchError extends Error {
  constructor(readonly check: SchemaCheck) {
    super(check.message ?? 'schema df mismatch');
    this.name = 'SchemaMismatchError';
  }
}

/** checkSchema for a process that refuses to start on any mismatch (the Node worker). */
export async function requireSchema(client: DbClient, expected: number): Promise<void> {
  const check = await checkSchema(client, expected);
  if (check.state !== 'ok') throw new SchemaMismatchError(check);
}

/** A worker epoch nobody has touched for this long belongs to a stopped worker. */
const EPOCH_STALE = "interval '1 minute'";

/**
 * Records that the worker `epochId` is alive, and forgets epochs gone stale. `now` defaults to the
 * database clock (tests pass one).
 */
export async function heartbeat(client: DbClient, epochId: string, now?: Date): Promise<void> {
  await client.query(
    `INSERT INTO df._worker_epoch (epoch_id, last_seen_at) VALUES ($1, coalesce($2::timestamptz, now()))
     ON CONFLICT (epoch_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at`,
    [epochId, now ?? null],
  );
  await client.query(`DELETE FROM df._worker_epoch WHERE last_seen_at < coalesce($1::timestamptz, now()) - ${EPOCH_STALE}`, [now ?? null]);
}

/** Removes a stopping worker's epoch at once rather than a minute later. */
export async function retireEpoch(client: DbClient, epochId: string): Promise<void> {
  await client.query('DELETE FROM df._worker_epoch WHERE epoch_id = $1', [epochId]);
}

/** Advisory lock that serialises pruning between workers and overlapping sweeps ("pgflare" + 1). */
export const PRUNE_LOCK_KEY = '31638886994244198';

export interface RetentionOptions {
  /** Terminal instances older than this are deleted (0 = immediately); null = pg_durable.retention_days (30). */
  retentionDays: number | null;
  /** Only the newest this many terminal instances are kept (pg_durable keeps 10 000). */
  keep: number;
  /** Bound the work of one pass. */
  batch: number;
  /** The clock retention is measured against; defaults to the database's now(). */
  now?: Date;
}

/** Terminal instances in prune order: the key of instances_finished_idx (migration 0035). */
const FINISHED = `status IN ('completed', 'failed', 'cancelled')`;
const FINISHED_AT = 'coalesce(completed_at, created_at)';

/**
 * Deletes terminal instances past retention (their nodes, scopes, signals, events and webhook
 * deliveries cascade), at most `batch` of them, oldest first, in one transaction under PRUNE_LOCK_KEY.
 * Returns how many were deleted, or null when another prune holds the lock: it skips rather than
 * waits, since two prunes would only queue behind each other's row locks. `client` must not be inside
 * a transaction.
 *
 * Both rules cut the same order (finished time, then id): "beyond the newest `keep`" is everything
 * before the keep-th newest, "past retention" everything before the cutoff, so the doomed rows are one
 * range of instances_finished_idx below the later of the two bounds, read from its low end. A pass
 * costs the `keep` index entries to find the edge plus the batch, however long the history.
 */
export async function pruneHistory(client: DbClient, opts: RetentionOptions): Promise<number | null> {
  return inTransaction(client, async (tx) => {
    const { rows } = await tx.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(${PRUNE_LOCK_KEY}) AS got`);
    if (!rows[0]?.got) return null;
    // (at, id): instances before it in (finished time, id) order go. keep = 0 keeps nothing.
    const { rows: bound } = await tx.query<{ at: Date | string; id: string }>(
      `WITH cutoff AS (
         SELECT coalesce($2::timestamptz, now()) - make_interval(days => coalesce($3::int, df._setting('retention_days', '30')::int)) AS at
       ), kept AS (
         SELECT ${FINISHED_AT} AS at, id FROM df.instances WHERE ${FINISHED}
          ORDER BY ${FINISHED_AT} DESC, id DESC OFFSET greatest($1::int - 1, 0) LIMIT 1
       ), edge AS (
         SELECT CASE WHEN $1::int = 0 THEN 'infinity'::timestamptz ELSE k.at END AS at,
                CASE WHEN $1::int = 0 THEN '' ELSE k.id::text END AS id
           FROM (SELECT) AS one LEFT JOIN kept AS k ON true
       )
       SELECT CASE WHEN e.at IS NOT NULL AND (e.at, e.id) > (c.at, '') THEN e.at ELSE c.at END::text AS at,
              CASE WHEN e.at IS NOT NULL AND (e.at, e.id) > (c.at, '') THEN e.id ELSE '' END AS id
         FROM cutoff AS c, edge AS e`,
      [opts.keep, opts.now ?? null, opts.retentionDays],
    );
    const { rowCount } = await tx.query(
      `WITH doomed AS (
         SELECT id FROM df.instances
          WHERE ${FINISHED} AND (${FINISHED_AT}, id) < ($1::timestamptz, $2::varchar)
          ORDER BY ${FINISHED_AT}, id
          LIMIT $3
       )
       DELETE FROM df.instances i USING doomed d WHERE i.id = d.id`,
      [bound[0]!.at, bound[0]!.id, opts.batch],
    );
    // The REST API's Idempotency-Key answers are replayed for 24 hours (src/api/idempotency.ts).
    await tx.query(`DELETE FROM df._idempotency_keys WHERE created_at < coalesce($1::timestamptz, now()) - interval '24 hours'`, [opts.now ?? null]);
    return rowCount ?? 0;
  });
}

export interface PruneRun {
  /** Instances deleted over all batches. */
  deleted: number;
  /** Transactions that deleted (or found nothing to delete). */
  batches: number;
  /** Another prune held the lock: this run stopped at that batch. */
  skipped: boolean;
}

/**
 * pruneHistory repeated, one transaction of at most `batch` instances each, until a batch comes back
 * short (nothing more is due), another prune holds the lock, `maxBatches` have run or `stop()` says so.
 * Each batch commits and releases its row locks before the next begins, so steps that touch the same
 * tables wait at most for one batch, and `pauseMs` between batches leaves the server to them.
 */
export async function pruneHistoryBatches(
  client: DbClient,
  opts: RetentionOptions & { maxBatches?: number; pauseMs?: number; stop?: () => boolean },
): Promise<PruneRun> {
  const run: PruneRun = { deleted: 0, batches: 0, skipped: false };
  while (run.batches < (opts.maxBatches ?? Infinity) && !opts.stop?.()) {
    const n = await pruneHistory(client, opts);
    if (n === null) return { ...run, skipped: true };
    run.batches++;
    run.deleted += n;
    if (n < opts.batch) break;
    if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
  }
  return run;
}
