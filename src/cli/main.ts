#!/usr/bin/env node
/**
 * pgflare CLI.
 *   pgflare migrate [--operator-schema NAME]   install or upgrade schema df in $DATABASE_URL
 *   pgflare worker [--concurrency N]           run the engine against $DATABASE_URL until SIGTERM
 *   pgflare start                              embedded PostgreSQL in .data/ (or $DATABASE_URL), migrated, worker up
 *   pgflare dump-schema                        print the catalog dump that test/schema.sql holds
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { runMigrate } from './migrate.ts';
import { runStart } from './start.ts';
import { runDumpSchema } from './dump-schema.ts';
import { runWorker } from './worker.ts';

const USAGE = `usage: pgflare <command> [options]

commands:
  migrate        install or upgrade schema df in $DATABASE_URL (or --database-url)
                 --operator-schema NAME   where the DSL operators live (default: public)
  worker         run workflow steps from $DATABASE_URL until SIGTERM (finishes in-flight steps)
                 --concurrency N          steps at once (default: PGFLARE_CONCURRENCY or 4)
  start          run pgflare locally: embedded PostgreSQL in .data/ unless $DATABASE_URL is set,
                 migrated, with a worker

environment: PGFLARE_CONCURRENCY, PGFLARE_POLL_INTERVAL_MS, PGFLARE_STEP_TIMEOUT_MS, PGFLARE_LEASE_MS,
  PGFLARE_RETRY_MAX_ATTEMPTS, PGFLARE_RETRY_BASE_MS, PGFLARE_RETRY_MAX_MS, PGFLARE_RETENTION_DAYS,
  PGFLARE_ENABLE_SUPERUSER_INSTANCES, PGFLARE_HTTP_POLICY, PGFLARE_HTTP_ALLOWED_HOSTS, PGFLARE_LOG_LEVEL
  dump-schema    print the deterministic schema dump of $DATABASE_URL
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const log = createLogger();
  const { values } = parseArgs({
    args: rest,
    options: {
      'database-url': { type: 'string' },
      'operator-schema': { type: 'string' },
      concurrency: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (!command || values.help || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  switch (command) {
    case 'migrate':
      return runMigrate({ databaseUrl, operatorSchema: values['operator-schema'] ?? process.env.PGFLARE_OPERATOR_SCHEMA, log });
    case 'worker': {
      const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)) {
        process.stderr.write(`pgflare worker: --concurrency must be an integer from 1 to 256, got "${values.concurrency}"\n`);
        return 2;
      }
      return runWorker({ databaseUrl, concurrency, log });
    }
    case 'start':
      return runStart({ databaseUrl, log });
    case 'dump-schema':
      return runDumpSchema({ databaseUrl });
    default:
      process.stderr.write(`pgflare: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

// Exit explicitly: a lingering handle (a pool's idle timer, a child's pipe) must not keep a finished
// command alive or change its exit status.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pgflare: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
