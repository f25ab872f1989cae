import { createLogger } from '../log.ts';
import { createPgDb } from '../runtime/node/pg-db.ts';
import { migrate } from '../migrate/runner.ts';

/** `pgflare migrate`: the bundled migrations (src/migrate/generated), never files from a checkout. */
export async function runMigrate(opts: { databaseUrl: string; operatorSchema?: string }): Promise<number> {
  const log = createLogger();
  // Migrations take locks and run DDL: on the direct connection when DATABASE_URL is a pooled one.
  const db = createPgDb({ connectionString: process.env.PGFLARE_DIRECT_URL || opts.databaseUrl, max: 1, applicationName: 'pgflare:migrate' });
  try {
    const result = await migrate(db, { operatorSchema: opts.operatorSchema, log: (line) => log.info(line) });
    log.info(result.applied.length ? 'schema df migrated' : 'schema df is up to date', {
      version: result.version,
      applied: result.applied.length,
      operator_schema: result.operatorSchema,
    });
    return 0;
  } finally {
    await db.end();
  }
}
