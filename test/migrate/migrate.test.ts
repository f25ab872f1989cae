import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useEmptyDatabases } from '../helpers/db.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { migrate } from '../../src/migrate/runner.ts';
import { loadMigrationsFromDir } from '../../src/migrate/load-dir.ts';
import { dumpSchema } from '../../src/migrate/dump.ts';
import { checksumOf } from '../../src/migrate/migrations.ts';

const migrations = loadMigrationsFromDir(join(import.meta.dirname, '../../migrations'));
const dbs = useEmptyDatabases();

async function withDb<T>(url: string, fn: (db: ReturnType<typeof createPgDb>) => Promise<T>): Promise<T> {
  const db = createPgDb({ connectionString: url, max: 2 });
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

async function dump(url: string, operatorSchema = 'public'): Promise<string> {
  return withDb(url, (db) => db.withClient((c) => dumpSchema(c, operatorSchema)));
}

describe('pgflare migrate', () => {
  it('installs as a non-superuser owner and a second run is a no-op', async () => {
    const url = await dbs.create();
    const first = await withDb(url, (db) => migrate(db, { migrations }));
    expect(first.applied).toHaveLength(migrations.length);
    const before = await dump(url);
    const second = await withDb(url, (db) => migrate(db, { migrations }));
    expect(second.applied).toEqual([]);
    expect(await dump(url)).toBe(before);
  });

  it('applies each migration exactly once with 10 concurrent runners', async () => {
    const url = await dbs.create();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => withDb(url, (db) => migrate(db, { migrations }))),
    );
    const applied = results.flatMap((r) => r.applied).sort();
    expect(applied).toEqual(migrations.map((m) => m.name).sort());
    const rows = await withDb(url, (db) => db.withClient((c) => c.query('SELECT version FROM df._migrations ORDER BY 1')));
    expect(rows.rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
  });

  it('an upgrade from every earlier version ends with the same schema as a fresh install', async () => {
    const freshUrl = await dbs.create();
    await withDb(freshUrl, (db) => migrate(db, { migrations }));
    const fresh = await dump(freshUrl);
    for (let k = 1; k < migrations.length; k++) {
      const url = await dbs.create();
      await withDb(url, (db) => migrate(db, { migrations: migrations.slice(0, k) }));
      await withDb(url, (db) => migrate(db, { migrations }));
      expect(await dump(url), `upgrade from version ${k}`).toBe(fresh);
    }
    // Two installs per migration: it grows with every migration (about 40 s for 24 on a loaded machine).
  }, 180_000);

  it('refuses a migration that changed after it was applied, and leaves the schema alone', async () => {
    const url = await dbs.create();
    await withDb(url, (db) => migrate(db, { migrations }));
    const edited = migrations.map((m, i) => (i === 0 ? { ...m, sql: m.sql + '\n-- edited', checksum: checksumOf(m.sql + '\n-- edited') } : m));
    await expect(withDb(url, (db) => migrate(db, { migrations: edited }))).rejects.toThrow(
      /migration 0001_tables changed after it was applied/,
    );
  });

  it('refuses a database that is newer than this pgflare', async () => {
    const url = await dbs.create();
    await withDb(url, (db) => migrate(db, { migrations }));
    await expect(withDb(url, (db) => migrate(db, { migrations: migrations.slice(0, 1) }))).rejects.toThrow(
      /newer than this pgflare knows/,
    );
  });

  it('a failing migration rolls back with its version row', async () => {
    const url = await dbs.create();
    const broken = [...migrations.slice(0, 1), { version: 2, name: '0002_broken', sql: 'CREATE TABLE df.x (a int); SELECT 1/0;', checksum: 'x' }];
    await expect(withDb(url, (db) => migrate(db, { migrations: broken }))).rejects.toThrow(/division by zero/);
    const state = await withDb(url, (db) =>
      db.withClient((c) => c.query(`SELECT (SELECT max(version) FROM df._migrations) AS v, to_regclass('df.x') AS x`)),
    );
    expect(state.rows[0]).toEqual({ v: 1, x: null });
  });

  it('installs the operators into a chosen schema and keeps them there', async () => {
    const url = await dbs.create();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE SCHEMA dsl');
    await client.end();
    const result = await withDb(url, (db) => migrate(db, { migrations, operatorSchema: 'dsl' }));
    expect(result.operatorSchema).toBe('dsl');
    const ops = await withDb(url, (db) =>
      db.withClient((c) =>
        c.query(`SELECT count(*)::int AS n FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname = 'dsl'`),
      ),
    );
    expect(ops.rows[0].n).toBeGreaterThanOrEqual(migrations.some((m) => m.sql.includes('CREATE OPERATOR')) ? 7 : 0);
    await expect(withDb(url, (db) => migrate(db, { migrations, operatorSchema: 'public' }))).rejects.toThrow(
      /operators are installed in schema "dsl"/,
    );
    expect((await withDb(url, (db) => migrate(db, { migrations }))).operatorSchema).toBe('dsl');
  });
});
