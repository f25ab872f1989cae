import type { Logger } from '../log.ts';
import { createPgDb } from '../runtime/node/pg-db.ts';
import { migrate } from '../migrate/runner.ts';

export async function runMigrate(opts: { databaseUrl?: string; operatorSchema?: string; log: Logger }): Promise<number> {
  if (!opts.databaseUrl) {
    process.stderr.write('pgflare migrate: set DATABASE_URL (or pass --database-url postgres://…)\n');
    return 2;
  }
  const db = createPgDb({ connectionString: opts.databaseUrl, max: 1, applicationName: 'pgflare:migrate' });
  try {
    const result = await migrate(db, { operatorSchema: opts.operatorSchema, log: (line) => opts.log.info(line) });
    opts.log.info(result.applied.length ? 'schema df migrated' : 'schema df is up to date', {
      version: result.version,
      applied: result.applied.length,
      operator_schema: result.operatorSchema,
    });
    return 0;
  } finally {
    await db.end();
  }
}
