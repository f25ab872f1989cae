import pg from 'pg';
import { dbOverPool, type Db, type DbClient, type RawResult } from '../../engine/db.ts';

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
  return dbOverPool(pool, { adapt: withUntilError });
}

const RAW_TYPES = { getTypeParser: () => (value: string) => value };

/**
 * A pg Query that keeps each statement's result as its CommandComplete arrives, so the results before a
 * statement that raised are still there (pg's own promise rejects without them).
 */
const QueryBase = pg.Query as unknown as new (config: object) => {
  handleCommandComplete(msg: unknown, con: unknown): void;
  on(event: string, fn: (arg?: unknown) => void): unknown;
  _result: RawResult;
};
class UntilError extends QueryBase {
  readonly done: RawResult[] = [];
  handleCommandComplete(msg: unknown, con: unknown): void {
    super.handleCommandComplete(msg, con);
    this.done.push(this._result);
  }
}

/** The client with DbClient.queryUntilError (added once to a pooled client). */
function withUntilError(client: pg.PoolClient): DbClient {
  const c = client as unknown as DbClient;
  c.queryUntilError ??= (text: string) =>
    new Promise((resolve) => {
      const q = new UntilError({ text, rowMode: 'array', types: RAW_TYPES });
      q.on('end', () => resolve({ results: q.done }));
      q.on('error', (error) => resolve({ results: q.done, error }));
      client.query(q as never);
    });
  return c;
}
