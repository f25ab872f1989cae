/**
 * pgflare CLI.
 *   pgflare migrate [--operator-schema NAME]   install or upgrade schema df in $DATABASE_URL
 *   pgflare start                              embedded PostgreSQL in .data/ (or $DATABASE_URL), migrated, ready
 *   pgflare dump-schema                        print the catalog dump that test/schema.sql holds
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { runMigrate } from './migrate.ts';
import { runStart } from './start.ts';
import { runDumpSchema } from './dump-schema.ts';

const USAGE = `usage: pgflare <command> [options]

commands:
  migrate        install or upgrade schema df in $DATABASE_URL (or --database-url)
                 --operator-schema NAME   where the DSL operators live (default: public)
  start          run pgflare locally: embedded PostgreSQL in .data/ unless $DATABASE_URL is set
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
    case 'start':
      return runStart({ databaseUrl, log });
    case 'dump-schema':
      return runDumpSchema({ databaseUrl });
    default:
      process.stderr.write(`pgflare: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pgflare: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
