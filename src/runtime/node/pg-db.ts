import pg from 'pg';
import { dbOverPool, type Db } from '../../engine/db.ts';

// int8 and numeric come back as strings by default; bigint counts we return are small enough for numbers.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgDbOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
}

/** The Node adapter of the database port, over a `pg` pool. */
export function createPgDb(options: PgDbOptions): Db & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'pgflare',
    // Sessions pick up ALTER DATABASE/ROLE … SET (e.g. pg_durable.http_policy) only when they connect.
    maxLifetimeSeconds: 300,
  });
  // An idle client losing its connection must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  return dbOverPool(pool);
}
