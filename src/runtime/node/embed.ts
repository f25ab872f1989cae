/**
 * pgflare inside your own Node process: `createPgflare()` runs the worker (and, if asked, the REST API
 * on a port) with start/stop, your logger and your concurrency; `fetch` is the REST API as a fetch
 * handler, to mount in your own HTTP server instead of a port of its own.
 */
import { apiConfig, createApp, parseCorsOrigins } from '../../api/app.ts';
import { parseStaticTokens } from '../../api/auth.ts';
import { loadConfig, type RuntimeConfig } from '../../config.ts';
import { createLogger, type Logger } from '../../log.ts';
import { migrate, type MigrateResult } from '../../migrate/runner.ts';
import { createNodeHttpRunner } from './http.ts';
import { createPgDb } from './pg-db.ts';
import { serveFetch, type ApiServer } from './serve.ts';
import { startNodeWorker, type NodeWorker, type NodeWorkerOptions } from './worker.ts';

export interface PgflareOptions {
  databaseUrl: string;
  /** Steps at once. Default: PGFLARE_CONCURRENCY or 4. */
  concurrency?: number;
  /** Default: JSON lines on stderr at PGFLARE_LOG_LEVEL (info). */
  logger?: Logger;
  /** Run the bundled migrations in start() first. Default false (run `pgflare migrate` when you deploy). */
  migrate?: boolean;
  /** Serve the REST API on this port from start() (0 picks a free one). Default: no port; use `fetch`. */
  api?: { port: number; hostname?: string };
  /** Where PGFLARE_* settings come from (src/config.ts). Default process.env. */
  env?: Record<string, string | undefined>;
  /** Run the worker (default true); false for an API-only process. */
  worker?: boolean;
}

export interface Pgflare {
  /** Migrates if asked, starts the worker and the API port; resolves when they are up. */
  start(): Promise<void>;
  /** Stops the API and the worker (in-flight steps finish first) and closes the pools. */
  stop(): Promise<void>;
  /** The REST API as a fetch handler (a pool of its own, opened on first use, closed by stop()). */
  fetch(request: Request): Promise<Response>;
  /** The API's address once start() served it. */
  readonly apiUrl: string | undefined;
  /** What start()'s migration did, if it ran. */
  readonly migrated: MigrateResult | undefined;
}

/** The worker's options from the runtime configuration (what `pgflare worker` uses). */
export function workerOptions(databaseUrl: string, cfg: RuntimeConfig, log: Logger, concurrency?: number): NodeWorkerOptions {
  return {
    connectionString: databaseUrl,
    concurrency: concurrency ?? cfg.concurrency,
    pollIntervalMs: cfg.pollIntervalMs,
    stepTimeoutMs: cfg.stepTimeoutMs,
    leaseMs: cfg.leaseMs,
    retry: cfg.retry,
    retentionDays: cfg.retentionDays,
    enableSuperuserInstances: cfg.enableSuperuserInstances,
    maxResultBytes: cfg.maxResultBytes,
    queueVacuumSteps: cfg.queueVacuumSteps,
    batchSize: cfg.batchSize,
    metricsPort: cfg.metricsPort,
    metricsHost: cfg.metricsHost,
    pooled: cfg.pooled,
    directUrl: cfg.directUrl,
    http: createNodeHttpRunner({ databaseUrl, policy: cfg.httpPolicy, allowedHosts: cfg.httpAllowedHosts, maxResponseBytes: cfg.maxResponseBytes }),
    log,
  };
}

export function createPgflare(options: PgflareOptions): Pgflare {
  const env = options.env ?? process.env;
  const log = options.logger ?? createLogger();
  const cfg = loadConfig(env);
  let worker: NodeWorker | undefined;
  let server: ApiServer | undefined;
  let api: { db: ReturnType<typeof createPgDb>; fetch: (r: Request) => Response | Promise<Response> } | undefined;
  let migrated: MigrateResult | undefined;
  let state: 'new' | 'started' | 'stopped' = 'new';

  const apiHandler = () => {
    if (!api) {
      const db = createPgDb({ connectionString: options.databaseUrl, max: 4, applicationName: 'pgflare:api' });
      const app = createApp({ db, log, staticTokens: parseStaticTokens(env.PGFLARE_API_TOKENS), corsOrigins: parseCorsOrigins(env.PGFLARE_CORS_ORIGINS), ...apiConfig(cfg) });
      api = { db, fetch: app.fetch };
    }
    return api;
  };

  const stop = async () => {
    state = 'stopped';
    await server?.close().catch(() => undefined);
    await worker?.stop();
    await api?.db.end().catch(() => undefined);
    server = worker = api = undefined;
  };

  return {
    get apiUrl() {
      return server?.url;
    },
    get migrated() {
      return migrated;
    },
    async start() {
      if (state !== 'new') throw new Error(`pgflare: start() after ${state === 'started' ? 'start()' : 'stop()'}`);
      state = 'started';
      try {
        if (options.migrate) {
          // DDL under locks: on the direct connection when DATABASE_URL is a pooler's (PGFLARE_DIRECT_URL).
          const db = createPgDb({ connectionString: cfg.directUrl ?? options.databaseUrl, max: 1, applicationName: 'pgflare:migrate' });
          try {
            migrated = await migrate(db, { log: (line) => log.info(line) });
          } finally {
            await db.end();
          }
        }
        if (options.worker !== false) worker = await startNodeWorker(workerOptions(options.databaseUrl, cfg, log, options.concurrency));
        if (options.api) server = await serveFetch((r) => apiHandler().fetch(r), options.api);
      } catch (err) {
        await stop();
        throw err;
      }
    },
    stop,
    async fetch(request) {
      if (state === 'stopped') throw new Error('pgflare: fetch() after stop()');
      return apiHandler().fetch(request);
    },
  };
}
