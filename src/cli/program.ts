/**
 * The `pgflare` command line, on commander. Actions import their modules lazily so `pgflare help` and
 * `pgflare --version` load only commander. Exit codes: EXIT below (documented in `pgflare --help`).
 */
import { Command, InvalidArgumentError, Option } from 'commander';

export const EXIT = {
  ok: 0,
  /** A runtime error: cannot connect, an SQL error, an unknown instance. */
  error: 1,
  /** Bad usage: an unknown command or option, a missing or invalid argument. */
  usage: 2,
  /** `tail` / `start --wait`: the instance failed, was cancelled, or the --timeout passed first. */
  failed: 3,
  cancelled: 4,
  timeout: 5,
} as const;

export class UsageError extends Error {}

const EXIT_HELP = `
Exit codes: 0 success (for tail and start --wait: the instance completed), 1 error, 2 bad usage,
3 the instance failed, 4 the instance was cancelled, 5 --timeout passed first.`;

const ENV_HELP = `
Environment: DATABASE_URL (or --database-url). The worker and up also read PGFLARE_CONCURRENCY,
PGFLARE_POLL_INTERVAL_MS, PGFLARE_STEP_TIMEOUT_MS, PGFLARE_LEASE_MS, PGFLARE_RETRY_MAX_ATTEMPTS,
PGFLARE_RETRY_BASE_MS, PGFLARE_RETRY_MAX_MS, PGFLARE_RETENTION_DAYS, PGFLARE_ENABLE_SUPERUSER_INSTANCES,
PGFLARE_HTTP_POLICY, PGFLARE_HTTP_ALLOWED_HOSTS, PGFLARE_API_PORT, PGFLARE_API_TOKENS, PGFLARE_LOG_LEVEL.`;

function intIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
    return n;
  };
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds.');
  return n;
}

function instanceId(value: string): string {
  if (!/^[0-9a-f]{8}$/.test(value)) throw new InvalidArgumentError('an instance id is 8 hex characters, e.g. 1a2b3c4d.');
  return value;
}

const dbOption = () => new Option('-d, --database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL');

/** Builds the program; `run` receives each action's exit code. */
export function createProgram(version: string, run: (code: Promise<number>) => void): Command {
  const program = new Command('pgflare')
    .description('Durable SQL workflows in your PostgreSQL: install the schema, run workers, operate instances.')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .showHelpAfterError('(run "pgflare help" or "pgflare help <command>")')
    .exitOverride()
    .addHelpText('after', `${EXIT_HELP}\n${ENV_HELP}`);

  const db = (name: string, description: string) => program.command(name).description(description).addOption(dbOption());
  const url = (opts: { databaseUrl?: string }) => {
    if (!opts.databaseUrl) throw new UsageError('set DATABASE_URL or pass --database-url postgres://…');
    return opts.databaseUrl;
  };

  // Operating the installation.
  db('migrate', 'install or upgrade schema df (the bundled migrations)')
    .option('--operator-schema <name>', 'schema for the DSL operators (~>, |=>, …); must be on search_path', process.env.PGFLARE_OPERATOR_SCHEMA)
    .action((opts) => run(import('./migrate.ts').then((m) => m.runMigrate({ databaseUrl: url(opts), operatorSchema: opts.operatorSchema }))));

  db('worker', 'run workflow steps until SIGTERM (finishes in-flight steps); serves the REST API when PGFLARE_API_PORT is set')
    .option('-c, --concurrency <n>', 'steps at once (default: PGFLARE_CONCURRENCY or 4)', intIn('--concurrency', 1, 256))
    .action((opts) => run(import('./worker.ts').then((m) => m.runWorker({ databaseUrl: url(opts), concurrency: opts.concurrency }))));

  db('up', 'run pgflare locally (npm start): an embedded PostgreSQL in .data/ unless DATABASE_URL is set, migrated, a worker and the REST API')
    .action((opts) => run(import('./up.ts').then((m) => m.runUp({ databaseUrl: opts.databaseUrl }))));

  db('dump-schema', 'print the deterministic catalog dump of schema df (what test/schema.sql holds)')
    .action((opts) => run(import('./dump-schema.ts').then((m) => m.runDumpSchema({ databaseUrl: url(opts) }))));

  // Operating instances.
  const instances = () => import('./instances.ts');
  db('list', 'list instances, newest first')
    .addOption(new Option('-s, --status <status>', 'only this status').choices(['pending', 'running', 'completed', 'failed', 'cancelled']))
    .option('-l, --label <label>', 'only this label')
    .option('-n, --limit <n>', 'at most n instances', intIn('--limit', 1, 10_000), 20)
    .option('--json', 'one JSON object per line instead of a table')
    .action((opts) => run(instances().then((m) => m.list(url(opts), opts))));

  db('status', 'print an instance\'s status, label, progress and output')
    .argument('<id>', 'instance id', instanceId)
    .option('--json', 'print JSON')
    .action((id, opts) => run(instances().then((m) => m.status(url(opts), id, opts))));

  db('show', 'print an instance\'s graph as a tree with each node\'s state (df.explain)')
    .argument('<id>', 'instance id', instanceId)
    .action((id, opts) => run(instances().then((m) => m.show(url(opts), id))));

  db('events', 'print an instance\'s history: failed attempts, failures, leases (df.instance_events)')
    .argument('<id>', 'instance id', instanceId)
    .option('--json', 'one JSON object per line instead of a table')
    .action((id, opts) => run(instances().then((m) => m.events(url(opts), id, opts))));

  db('start', 'start a workflow: a DSL expression, a graph as JSON, or one SQL statement; prints the instance id')
    .argument('<dsl>', `e.g. "'SELECT 20 AS n' |=> 'n' ~> 'SELECT \\$n + 22 AS answer'"`)
    .option('-l, --label <label>', 'the instance\'s label')
    .option('-w, --wait', 'follow the instance until it ends (a live progress line on a terminal); exit code = outcome')
    .option('--timeout <seconds>', 'with --wait: give up after this long (exit 5)', positiveSeconds)
    .option('--interval <ms>', 'with --wait: how often to look', intIn('--interval', 10, 60_000), 500)
    .option('--no-color', 'plain text even on a terminal (also NO_COLOR)')
    .addHelpText('after', `
The argument is read the way df.explain reads its input: JSON starting with "{" is a graph; text that
contains ~> |=> ?> !> @> or df., or starts with a quote, is an SQL expression evaluated as
SELECT df.start(<dsl>); anything else is a single SQL step. (The local stack that \`npm start\` runs is
\`pgflare up\`.)`)
    .action((dsl, opts) => run(import('./start.ts').then((m) => m.start(url(opts), dsl, opts))));

  db('cancel', 'cancel an instance')
    .argument('<id>', 'instance id', instanceId)
    .option('-r, --reason <text>', 'recorded as the reason', 'Cancelled by user')
    .action((id, opts) => run(instances().then((m) => m.cancel(url(opts), id, opts.reason))));

  db('resume', 'run a failed instance again from the steps that failed; completed steps are not run again (df.resume)')
    .argument('<id>', 'instance id', instanceId)
    .action((id, opts) => run(instances().then((m) => m.resume(url(opts), id))));

  db('restart', 'start a new instance with the same graph, variables and label; prints its id (df.restart)')
    .argument('<id>', 'instance id', instanceId)
    .action((id, opts) => run(instances().then((m) => m.restart(url(opts), id))));

  db('signal', 'send a signal to an instance (wakes a df.wait_for_signal node of that name)')
    .argument('<id>', 'instance id', instanceId)
    .argument('<name>', 'signal name')
    .argument('[json]', 'payload (text that is not JSON is sent as a JSON string)', '{}')
    .action((id, name, json, opts) => run(instances().then((m) => m.signal(url(opts), id, name, json))));

  db('tail', 'follow an instance live: each step as it starts and finishes; exit code = outcome')
    .argument('<id>', 'instance id', instanceId)
    .option('--timeout <seconds>', 'give up after this long (exit 5)', positiveSeconds)
    .option('--interval <ms>', 'how often to look', intIn('--interval', 10, 60_000), 500)
    .option('--no-color', 'plain text even on a terminal (also NO_COLOR)')
    .addHelpText('after', EXIT_HELP)
    .action((id, opts) => run(import('./tail.ts').then((m) => m.tail(url(opts), id, opts))));

  return program;
}
