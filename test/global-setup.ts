/**
 * Starts one throwaway PostgreSQL for the whole run and migrates a template database once, as a
 * non-superuser role that owns it (the way users install pgflare). Each test file then clones the
 * template (test/helpers/db.ts). PGFLARE_TEST_PG picks the major version (14-18, default 15); `npm test`
 * runs the core suites on each (scripts/test-matrix.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { DEFAULT_EMBEDDED_VERSION, startEmbeddedPostgres, type EmbeddedServer } from '../src/runtime/node/embedded.ts';
import { createPgDb } from '../src/runtime/node/pg-db.ts';
import { migrate } from '../src/migrate/runner.ts';
import { loadMigrationsFromDir } from '../src/migrate/load-dir.ts';

export const OWNER = 'pgflare_owner';
export const OWNER_PASSWORD = 'owner';
export const TEMPLATE = 'pgflare_template';

let server: EmbeddedServer | undefined;
let dataDir: string | undefined;

export async function setup(project: TestProject) {
  const version = process.env.PGFLARE_TEST_PG || DEFAULT_EMBEDDED_VERSION;
  dataDir = mkdtempSync(join(tmpdir(), 'pgflare-test-'));
  server = await startEmbeddedPostgres({
    dataDir,
    version,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  const admin = new pg.Client({ connectionString: server.superuserUrl });
  await admin.connect();
  const serverVersionNum = Number((await admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
  await admin.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD '${OWNER_PASSWORD}' CREATEDB CREATEROLE`);
  await admin.query(`CREATE DATABASE ${TEMPLATE} OWNER ${OWNER}`);
  await admin.query('CREATE TABLE pgflare_test_kept (name text PRIMARY KEY)');
  await admin.end();

  const db = createPgDb({ connectionString: server.urlFor(TEMPLATE, OWNER, OWNER_PASSWORD), max: 1 });
  try {
    await migrate(db, { migrations: loadMigrationsFromDir(join(import.meta.dirname, '..', 'migrations')) });
  } finally {
    await db.end();
  }
  project.provide('pg', { port: server.port, template: TEMPLATE, owner: OWNER, ownerPassword: OWNER_PASSWORD, serverVersionNum });
}

export async function teardown() {
  if (!server || !dataDir) return;
  const admin = new pg.Client({ connectionString: server.superuserUrl });
  await admin.connect();
  const kept = (await admin.query<{ name: string }>('SELECT name FROM pgflare_test_kept')).rows.map((r) => r.name);
  await admin.end();
  await server.stop();
  if (kept.length === 0) {
    rmSync(dataDir, { recursive: true, force: true });
    return;
  }
  // A failed test's database survives with its cluster; print how to look at it.
  console.warn(
    `\nkept ${kept.join(', ')} in ${dataDir}\n` +
      `  start: su postgres -c "${server.binDir}/pg_ctl -D ${dataDir} -o '-p 5499' start"\n` +
      `  then:  psql postgres://postgres:postgres@127.0.0.1:5499/${kept[0]}`,
  );
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** serverVersionNum: e.g. 150018 (server_version_num), for the few tests whose expectations differ by version. */
    pg: { port: number; template: string; owner: string; ownerPassword: string; serverVersionNum: number };
  }
}
