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

/**
 * Deletes terminal instances past retention (their nodes, scopes, signals, events and webhook
 * deliveries cascade), at most `batch` of them, oldest first, in one transaction under PRUNE_LOCK_KEY.
 * Returns how many were deleted, or null when another prune holds the lock: it skips rather than
 * waits, since two prunes would only queue behind each other's row locks. `client` must not be inside
 * a transaction.
 */
export async function pruneHistory(client: DbClient, opts: RetentionOptions): Promise<number | null> {
  return inTransaction(client, async (tx) => {
    const { rows } = await tx.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(${PRUNE_LOCK_KEY}) AS got`);
    if (!rows[0]?.got) return null;
    const { rowCount } = await tx.query(
      `WITH ranked AS (
         SELECT id, coalesce(completed_at, created_at) AS at,
                row_number() OVER (ORDER BY coalesce(completed_at, created_at) DESC, id DESC) AS rank
           FROM df.instances WHERE status IN ('completed', 'failed', 'cancelled')
       ), doomed AS (
         SELECT id FROM ranked
          WHERE rank > $1
             OR at < coalesce($4::timestamptz, now()) - make_interval(days => coalesce($2::int, df._setting('retention_days', '30')::int))
          ORDER BY rank DESC -- oldest first, so a bounded pass takes the oldest
          LIMIT $3
       )
       DELETE FROM df.instances i USING doomed d WHERE i.id = d.id`,
      [opts.keep, opts.retentionDays, opts.batch, opts.now ?? null],
    );
    return rowCount ?? 0;
  });
}
