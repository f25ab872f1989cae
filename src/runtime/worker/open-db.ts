/**
 * Which database an invocation talks to, and how (docs/deploying-to-workers.md, "Connection poolers and
 * Hyperdrive"):
 *
 *  - HYPERDRIVE bound: `pg` over the binding (hyperdrive-db.ts). Hyperdrive pools in transaction mode, so
 *    the engine runs `pooled`; PGFLARE_DIRECT_URL or DATABASE_URL, when set, is the direct connection
 *    (node-postgres over a TCP socket) for the few steps that need a session of their own
 *    (src/engine/pooled.ts).
 *  - else DATABASE_URL over the Neon driver (neon-db.ts); `pooled` when PGFLARE_POOLED says so or the
 *    URL looks like a pooler's (Neon's `-pooler` host), with PGFLARE_DIRECT_URL as the direct one.
 */
import type { Db } from '../../engine/db.ts';
import { looksPooled } from '../../engine/pooled.ts';
import { createHyperdriveDb } from './hyperdrive-db.ts';
import { createNeonDb } from './neon-db.ts';

export interface DbBindings {
  DATABASE_URL?: string;
  /** The Hyperdrive binding (wrangler.toml `[[hyperdrive]]`, binding "HYPERDRIVE"). */
  HYPERDRIVE?: { connectionString: string };
  WS_PROXY?: string;
  PGFLARE_DIRECT_URL?: string;
}

export interface WorkerDb extends Db {
  /** The engine's `pooled` option. */
  pooled: boolean;
  /** The engine's `directDb` option. */
  directDb?: Db;
  /** Which path this invocation took, for logs. */
  via: 'hyperdrive' | 'neon';
}

export function openWorkerDb(env: DbBindings, opts: { max: number; applicationName: string; pooled?: boolean }): WorkerDb {
  // The direct connection: node-postgres over a TCP socket reaches any PostgreSQL (the Neon driver's
  // WebSocket only Neon's); through the local WebSocket proxy when one is set (dev and tests).
  const direct = (url: string): Db => {
    const applicationName = `${opts.applicationName}:direct`;
    return env.WS_PROXY
      ? createNeonDb({ connectionString: url, wsProxy: env.WS_PROXY, max: 1, applicationName })
      : createHyperdriveDb({ connectionString: url, max: 1, applicationName });
  };
  if (env.HYPERDRIVE?.connectionString) {
    const db = createHyperdriveDb({ connectionString: env.HYPERDRIVE.connectionString, max: opts.max, applicationName: opts.applicationName });
    const directUrl = env.PGFLARE_DIRECT_URL || env.DATABASE_URL;
    return withDirect(db, opts.pooled ?? true, directUrl ? direct(directUrl) : undefined, 'hyperdrive');
  }
  if (!env.DATABASE_URL) {
    throw new Error('no database: bind Hyperdrive as HYPERDRIVE (wrangler.toml [[hyperdrive]]) or set DATABASE_URL (`wrangler secret put DATABASE_URL`, or --var DATABASE_URL:… in dev)');
  }
  const db = createNeonDb({ connectionString: env.DATABASE_URL, wsProxy: env.WS_PROXY, max: opts.max, applicationName: opts.applicationName });
  const pooled = looksPooled(env.DATABASE_URL, opts.pooled);
  return withDirect(db, pooled, pooled && env.PGFLARE_DIRECT_URL ? direct(env.PGFLARE_DIRECT_URL) : undefined, 'neon');
}

/** The pooled Db with the direct one beside it; end() ends both (the caller hands it to waitUntil). */
function withDirect(db: Db, pooled: boolean, directDb: Db | undefined, via: WorkerDb['via']): WorkerDb {
  return {
    withClient: db.withClient,
    withTransaction: db.withTransaction,
    end: async () => {
      await Promise.all([db.end(), directDb?.end()]);
    },
    pooled,
    directDb,
    via,
  };
}
