/**
 * `npm run dev`: the Workers runtime locally, end to end.
 *
 *  1. the embedded PostgreSQL in $PGFLARE_DATA_DIR (default .data/, shared with `npm start`; stop that
 *     first), a non-superuser role `pgflare` owning database `pgflare`, schema df migrated;
 *  2. the Worker's database: by default its Hyperdrive binding HYPERDRIVE, with that server as the
 *     local connection string (CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE). While the
 *     binding is commented out in wrangler.toml, a copy of it with the binding added is written to
 *     .wrangler/dev/wrangler.toml and used. PGFLARE_DEV_DB=neon instead starts scripts/ws-proxy.ts, so
 *     the Neon driver inside workerd reaches the server over DATABASE_URL and WS_PROXY;
 *  3. `wrangler dev --test-scheduled` with a dev API token as a var: local queues (producer and consumer
 *     from wrangler.toml), the scheduled handler at /__scheduled;
 *  4. a cron stand-in: wrangler dev does not fire cron triggers by itself, so this script calls
 *     /__scheduled every PGFLARE_DEV_CRON_SECONDS (default 60; 0 = never).
 *
 * Set DATABASE_URL to use your own PostgreSQL instead of the embedded one (it must be reachable from
 * this machine; the proxy only connects to loopback hosts unless PGFLARE_DEV_PROXY_ANY_HOST=1).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/runtime/node/embedded.ts';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { migrate } from '../src/migrate/runner.ts';
import { startWsProxy } from './ws-proxy.ts';

const ROLE = 'pgflare';
const PASSWORD = 'pgflare';
const DATABASE = 'pgflare';
const DEV_TOKEN = 'pgflare-dev-token-0000';

const port = Number(process.env.PGFLARE_DEV_PORT ?? 8787);
const cronSeconds = Number(process.env.PGFLARE_DEV_CRON_SECONDS ?? 60);

let server: EmbeddedServer | undefined;
let url = process.env.DATABASE_URL;
// Whatever fails while starting up, the embedded server must not outlive this process.
process.once('uncaughtException', (err) => {
  console.error(err);
  void (server?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
});
process.once('unhandledRejection', (err) => {
  console.error(err);
  void (server?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
});
if (!url) {
  const dataDir = resolve(process.env.PGFLARE_DATA_DIR ?? '.data');
  const pgPort = Number(process.env.PGFLARE_PG_PORT ?? 54329);
  console.error(`dev: starting embedded PostgreSQL (data ${dataDir}, port ${pgPort})`);
  server = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg'), port: pgPort });
  const admin = new pg.Client({ connectionString: server.superuserUrl });
  await admin.connect();
  if (!(await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [ROLE])).rowCount) {
    await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
  }
  if (!(await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])).rowCount) {
    await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${ROLE}`);
  }
  await admin.end();
  url = server.urlFor(DATABASE, ROLE, PASSWORD);
}

const db = createPgDb({ connectionString: url, max: 1, applicationName: 'pgflare:dev-migrate' });
try {
  const r = await migrate(db, { log: (l) => console.error(`dev: ${l}`) });
  console.error(`dev: schema df at migration ${r.version}`);
} finally {
  await db.end();
}

const viaNeon = process.env.PGFLARE_DEV_DB === 'neon';
if (process.env.PGFLARE_DEV_DB && !viaNeon && process.env.PGFLARE_DEV_DB !== 'hyperdrive') {
  throw new Error(`PGFLARE_DEV_DB must be hyperdrive (the default) or neon, not ${JSON.stringify(process.env.PGFLARE_DEV_DB)}`);
}
const proxy = viaNeon ? await startWsProxy({ allowAnyHost: process.env.PGFLARE_DEV_PROXY_ANY_HOST === '1', log: (l) => console.error(l) }) : null;
if (proxy) console.error(`dev: ws proxy on ${proxy.address} (the Neon driver over DATABASE_URL)`);
else console.error('dev: the Worker reaches PostgreSQL through its Hyperdrive binding HYPERDRIVE (local connection string)');

const vars: Record<string, string> = {
  ...(proxy ? { DATABASE_URL: url, WS_PROXY: proxy.address } : {}),
  PGFLARE_API_TOKENS: process.env.PGFLARE_API_TOKENS ?? `${DEV_TOKEN}=${ROLE}`,
};
const configArgs = proxy ? [] : hyperdriveConfig();
const wrangler = spawn(
  process.execPath,
  [
    resolve(import.meta.dirname, '..', 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
    'dev',
    '--test-scheduled',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    ...configArgs,
    ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
    ...process.argv.slice(2),
  ],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? 'false',
      ...(proxy ? {} : { CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE: url }),
    },
  },
);

const base = `http://127.0.0.1:${port}`;
console.error(`
dev: worker on ${base}
  start a three-way JOIN:
    curl -s -X POST ${base}/v1/instances -H 'Authorization: Bearer ${DEV_TOKEN}' -H 'content-type: application/json' -d @- <<'EOF'
{"workflow": "('SELECT 1 AS a' & 'SELECT 2 AS b' & 'SELECT 3 AS c') ~> 'SELECT 42 AS answer'"}
EOF
  or from psql (${url.replace(/:[^:@/]*@/, ':***@')}):
    SELECT df.start(('SELECT 1 AS a' & 'SELECT 2 AS b' & 'SELECT 3 AS c') ~> 'SELECT 42 AS answer');
  run the sweeper now:   curl ${base}/__scheduled
  (it also runs every ${cronSeconds || '∞'} s)
`);

const cron =
  cronSeconds > 0
    ? setInterval(() => {
        fetch(`${base}/__scheduled?cron=*+*+*+*+*`).catch(() => undefined);
      }, cronSeconds * 1000)
    : undefined;

let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  if (cron) clearInterval(cron);
  if (wrangler.exitCode === null) wrangler.kill('SIGINT');
  await proxy?.close();
  await server?.stop();
  process.exit(code);
};
wrangler.on('exit', (code) => void stop(code ?? 0));
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

/**
 * wrangler's arguments for a config that binds HYPERDRIVE: none when wrangler.toml declares it, else a
 * copy with the binding added (its id is a placeholder: locally only the connection string counts).
 */
function hyperdriveConfig(): string[] {
  const root = resolve(import.meta.dirname, '..');
  const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  if (/^\s*\[\[hyperdrive\]\]/m.test(toml)) return [];
  const dir = join(root, '.wrangler', 'dev');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'wrangler.toml');
  const main = JSON.stringify(join(root, 'src', 'runtime', 'worker', 'index.ts'));
  writeFileSync(
    file,
    `# Written by scripts/dev.ts from wrangler.toml, with the Hyperdrive binding added; edit wrangler.toml instead.\n` +
      toml.replace(/^main = .*$/m, `main = ${main}`) +
      `\n[[hyperdrive]]\nbinding = "HYPERDRIVE"\nid = "pgflare-dev-local"\n`,
  );
  return ['--config', file];
}
