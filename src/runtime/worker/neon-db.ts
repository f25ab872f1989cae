/**
 * The Workers adapter of the database port (DESIGN 9), over `@neondatabase/serverless`: node-postgres'
 * Pool speaking the wire protocol over a WebSocket. One pool per invocation (Workers may not share
 * I/O objects between requests), ended through `ctx.waitUntil` once the invocation's work is done.
 *
 * Works against Neon (wss://<endpoint>/v2) and, for `npm run dev` and the workerd tests, against any
 * local PostgreSQL through scripts/ws-proxy.ts (`WS_PROXY=127.0.0.1:<port>`).
 */
import { neonConfig, Pool, types, type PoolClient } from '@neondatabase/serverless';
import { dbOverPool, type Db, type DbClient } from '../../engine/db.ts';

// Same value mapping as the Node adapter (src/runtime/node/pg-db.ts): int8 counts come back as numbers.
types.setTypeParser(20, (v: string) => Number(v));

export interface NeonDbOptions {
  connectionString: string;
  /**
   * Sessions this pool may open at once. Workers allow 6 simultaneous outgoing connections per
   * invocation (each WebSocket is one, and so is each fetch of an HTTP step), so keep this small.
   */
  max?: number;
  /** Shows in pg_stat_activity; the worker puts the invocation id here. */
  applicationName?: string;
  /** `host:port` of a local ws→TCP proxy (scripts/ws-proxy.ts); unset against Neon. */
  wsProxy?: string;
}

/** A Db whose pool can be ended without waiting (the caller hands `end()` to waitUntil). */
export function createNeonDb(options: NeonDbOptions): Db & { pool: Pool } {
  if (options.wsProxy) configureLocalProxy(options.wsProxy);
  const pool = new Pool({
    connectionString: options.connectionString,
    max: options.max ?? 3,
    application_name: options.applicationName ?? 'pgflare:worker',
    // Idle sessions are not kept past the invocation anyway; this only bounds a long batch.
    idleTimeoutMillis: 10_000,
  });
  // A session dying while idle must not reject anything; the next checkout opens a new one.
  pool.on('error', () => undefined);

  return dbOverPool(pool, { adapt, dropOnThrow: true });
}

let proxyConfigured: string | undefined;

/** Plain ws:// to the local proxy, no TLS inside it, no pipelining (the proxy is a dumb byte pipe). */
function configureLocalProxy(proxy: string): void {
  if (proxyConfigured === proxy) return;
  neonConfig.wsProxy = (host: string, port: number | string) => `${proxy}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
  proxyConfigured = proxy;
}

let statementSeq = 0;
// Per isolate, made on first use (no randomness at global scope on Workers): behind a pooler another
// isolate's names must not meet ours on a shared server session.
let statementTag: string | undefined;

/**
 * node-postgres 8.12+ takes `queryMode: 'extended'` to force the extended protocol for a query without
 * parameters; the node-postgres inside the Neon driver predates it and would send such a query over the
 * simple protocol, where multi-statement text runs instead of failing as in pg_durable
 * (src/engine/executors/sql.ts). A statement name forces the extended protocol there too; names are
 * never reused, and the engine's session restore (DEALLOCATE ALL) drops them server-side, inside the
 * step's transaction.
 */
function adapt(client: PoolClient): DbClient {
  return {
    query: ((text: unknown, params?: unknown[]) => {
      if (text && typeof text === 'object' && (text as { queryMode?: string }).queryMode === 'extended') {
        const { queryMode: _mode, ...cfg } = text as Record<string, unknown>;
        const values = cfg.values as unknown[] | undefined;
        if (!values || values.length === 0) cfg.name = `pgflare_s${(statementTag ??= Math.random().toString(36).slice(2, 10))}_${++statementSeq}`;
        return client.query(cfg as never);
      }
      return client.query(text as never, params as never);
    }) as DbClient['query'],
  };
}
