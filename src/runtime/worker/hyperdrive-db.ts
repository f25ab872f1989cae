/**
 * The Workers adapter of the database port over Cloudflare Hyperdrive: node-postgres (`pg`) over Workers
 * TCP sockets (`nodejs_compat`), to the binding's connection string. Hyperdrive keeps warm sessions near
 * the database and pools them in transaction mode, so the engine runs with `pooled` (src/engine/pooled.ts).
 * One pool per invocation, as with the Neon driver (Workers share no I/O objects between requests),
 * ended through `ctx.waitUntil`.
 *
 * Locally (`npm run dev`, the workerd tests) the binding's connection string leads, through workerd, to
 * `localConnectionString`: the embedded or test PostgreSQL, or PgBouncer in front of it.
 */
import pg from 'pg';
import { dbOverPool, type Db } from '../../engine/db.ts';

// Same value mapping as the other adapters: int8 counts come back as numbers.
pg.types.setTypeParser(20, (v: string) => Number(v));

export interface HyperdriveDbOptions {
  /** `env.HYPERDRIVE.connectionString`. */
  connectionString: string;
  /** Sessions this pool may open at once (Workers allow 6 simultaneous outgoing connections per invocation). */
  max?: number;
  applicationName?: string;
}

export function createHyperdriveDb(options: HyperdriveDbOptions): Db & { pool: { end(): Promise<void> } } {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 3,
    application_name: options.applicationName ?? 'pgflare:worker',
    idleTimeoutMillis: 10_000,
  });
  // A session dying while idle must not reject anything; the next checkout opens a new one.
  pool.on('error', () => undefined);

  // node-postgres takes `queryMode: 'extended'` itself (an unnamed statement): nothing to adapt.
  return dbOverPool(pool, { dropOnThrow: true });
}
