/**
 * `pgflare/node`: the engine and the REST API inside a Node process (the package's Node entry point).
 * The CLI (`pgflare worker`, `pgflare up`) is built from these same pieces.
 */
import type { Logger } from '../../log.ts';
import { migrate, type MigrateResult } from '../../migrate/runner.ts';
import { createPgDb } from './pg-db.ts';

export { createPgflare, type Pgflare, type PgflareOptions } from './embed.ts';
export { startNodeWorker, type NodeWorker, type NodeWorkerOptions } from './worker.ts';
export { startApiServer, type ApiServer } from './serve.ts';
export { createNodeHttpRunner } from './http.ts';
export { migrate, MigrationError, type MigrateOptions, type MigrateResult } from '../../migrate/runner.ts';
export { migrations } from '../../migrate/generated/migrations.ts';
export type { Migration } from '../../migrate/migrations.ts';
export { loadConfig, ConfigError, type RuntimeConfig } from '../../config.ts';
export { createLogger, silentLogger, type Logger, type LogLevel } from '../../log.ts';
export type { Db, DbClient, QueryResult } from '../../engine/db.ts';

/** Installs or upgrades schema df in the database at `connectionString` with the bundled migrations. */
export async function migrateDatabase(
  connectionString: string,
  opts: { operatorSchema?: string; log?: Logger } = {},
): Promise<MigrateResult> {
  const db = createPgDb({ connectionString, max: 1, applicationName: 'pgflare:migrate' });
  try {
    return await migrate(db, { operatorSchema: opts.operatorSchema, log: opts.log ? (line) => opts.log!.info(line) : undefined });
  } finally {
    await db.end();
  }
}
