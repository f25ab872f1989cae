/**
 * Transaction-mode poolers (PgBouncer, Neon's and Supabase's pooled connection strings, Cloudflare
 * Hyperdrive) lend a server session for one transaction at a time, so the engine must not rely on
 * anything that outlives a transaction on its session. Everything on the transactional path already
 * keeps within one (docs/ARCHITECTURE.md, "Behind a transaction-mode pooler"); what does not:
 *
 *  - the wake-up claim prepared on an idle session (queries/claim.ts prepareClaim): off when pooled;
 *  - a non-transactional SQL step (VACUUM, CREATE INDEX CONCURRENTLY, …): its session-level settings,
 *    the statement and the session restore are three round trips outside a transaction. It runs on the
 *    direct connection (EngineOptions.directDb) when there is one, else the step fails naming it;
 *  - the Node worker's LISTEN (runtime/node/worker.ts): on the direct connection, else polling.
 */
import type { Db } from './db.ts';

export const DIRECT_URL_NEEDED =
  'pgflare: this statement cannot run inside a transaction block, so it needs a session of its own, and DATABASE_URL goes through a transaction-mode pooler: ' +
  'set PGFLARE_DIRECT_URL to a direct (unpooled) connection string for such steps';

/** Where a step that needs a session of its own runs: the direct Db, the pooled one when not pooled, or nowhere. */
export function sessionDb(opts: { db: Db; pooled?: boolean; directDb?: Db }): Db | null {
  if (opts.directDb) return opts.directDb;
  return opts.pooled ? null : opts.db;
}

/**
 * Whether a connection string goes through a transaction-mode pooler: `setting` (PGFLARE_POOLED) when
 * given, else by its look: Neon's `-pooler.` host, Supabase's pooler (port 6543, `pooler.supabase.com`),
 * PgBouncer's default port 6432.
 */
export function looksPooled(connectionString: string, setting?: boolean): boolean {
  if (setting !== undefined) return setting;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return false; // a keyword/value string: say so with PGFLARE_POOLED
  }
  const host = url.hostname.toLowerCase();
  return host.includes('-pooler.') || host.endsWith('pooler.supabase.com') || url.port === '6543' || url.port === '6432';
}
