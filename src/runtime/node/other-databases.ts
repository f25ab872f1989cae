/**
 * The Node worker's connections to other databases of the same server, for instances started with
 * df.start(…, database => name) (src/engine/executors/other-database.ts): one pool per database, made
 * on first use from PGFLARE_DATABASE_URL_<NAME> when set, else from the worker's own connection string
 * with the database replaced (same host, user and password).
 */
import type { Db } from '../../engine/db.ts';
import { databaseUrlVariable } from '../../engine/executors/other-database.ts';
import { createPgDb } from './pg-db.ts';

export interface OtherDatabases {
  databases(name: string): Db | null;
  end(): Promise<void>;
}

/** `connectionString` pointing at database `name`, or null when it is not a URL. */
export function urlForDatabase(connectionString: string, name: string): string | null {
  try {
    const u = new URL(connectionString);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return null;
    u.pathname = `/${encodeURIComponent(name)}`;
    u.searchParams.delete('dbname');
    return u.toString();
  } catch {
    return null;
  }
}

export function otherDatabasePools(connectionString: string, env: Record<string, string | undefined>, max: number): OtherDatabases {
  const pools = new Map<string, Db | null>();
  return {
    databases(name) {
      if (!pools.has(name)) {
        const url = env[databaseUrlVariable(name)] || urlForDatabase(connectionString, name);
        pools.set(name, url ? createPgDb({ connectionString: url, max, applicationName: 'pgflare:worker' }) : null);
      }
      return pools.get(name)!;
    },
    async end() {
      await Promise.all([...pools.values()].map((p) => p?.end()));
      pools.clear();
    },
  };
}
