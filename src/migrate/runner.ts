import type { Db, DbClient } from '../engine/db.ts';
import type { Migration } from './migrations.ts';
import { migrations as bundled } from './generated/migrations.ts';

/** pg_advisory_xact_lock key shared by every migrator. */
export const MIGRATE_LOCK_KEY = '31638886994244197'; // "pgflare" in ASCII as a bigint
export const DEFAULT_OPERATOR_SCHEMA = 'public';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

export interface MigrateOptions {
  migrations?: Migration[];
  /** Schema for the DSL operators (`~>`, `|=>`, …); must be on users' search_path. Default `public`. */
  operatorSchema?: string;
  log?: (line: string) => void;
}

export interface MigrateResult {
  applied: string[];
  version: number;
  operatorSchema: string;
}

export class MigrationError extends Error {}

/**
 * Installs or upgrades schema `df`. Each pending migration runs in its own transaction that first takes
 * the advisory lock, re-reads what is applied, inserts its version row and runs the file, so the version
 * row commits with the migration and concurrent runners apply each file exactly once.
 */
export async function migrate(db: Db, options: MigrateOptions = {}): Promise<MigrateResult> {
  const list = options.migrations ?? bundled;
  if (options.operatorSchema !== undefined && !IDENTIFIER.test(options.operatorSchema)) {
    throw new MigrationError(`operator schema "${options.operatorSchema}" is not a plain identifier`);
  }
  const applied: string[] = [];
  return db.withClient(async (client) => {
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK_KEY})`);
        await bootstrap(client);
        const state = await readState(client, list);
        const operatorSchema = await resolveOperatorSchema(client, options.operatorSchema);
        const next = list.find((m) => !state.has(m.version));
        if (!next) {
          await client.query('COMMIT');
          return { applied, version: list.length, operatorSchema };
        }
        await client.query('INSERT INTO df._migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          next.version,
          next.name,
          next.checksum,
        ]);
        await client.query(renderMigration(next.sql, operatorSchema));
        await client.query(REVOKE_INTERNALS);
        await client.query('COMMIT');
        applied.push(next.name);
        options.log?.(`applied ${next.name}`);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
  });
}

// Internals are `_`-prefixed; PUBLIC must never execute them, whatever a migration forgot. (Per-schema
// default privileges cannot revoke PostgreSQL's global EXECUTE-to-PUBLIC default, so this runs instead.)
const REVOKE_INTERNALS = `DO $$
DECLARE v_fn regprocedure;
BEGIN
  FOR v_fn IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'df' AND p.proname LIKE '\\_%'
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_fn);
  END LOOP;
END $$`;

/** Replaces the `@operator_schema@` placeholder; everything else in a migration is plain SQL. */
export function renderMigration(sql: string, operatorSchema: string): string {
  return sql.replaceAll('@operator_schema@', `"${operatorSchema}"`);
}

async function bootstrap(client: DbClient): Promise<void> {
  await client.query(`
    CREATE SCHEMA IF NOT EXISTS df;
    CREATE TABLE IF NOT EXISTS df._migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS df._config (
      key text PRIMARY KEY,
      value text NOT NULL
    );
    REVOKE ALL ON df._migrations, df._config FROM PUBLIC;`);
}

async function readState(client: DbClient, list: Migration[]): Promise<Map<number, string>> {
  const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
    'SELECT version, name, checksum FROM df._migrations ORDER BY version',
  );
  const state = new Map<number, string>();
  for (const row of rows) {
    const known = list.find((m) => m.version === row.version);
    if (!known) {
      throw new MigrationError(
        `database is at migration ${row.name}, newer than this pgflare knows (${list.length}); upgrade pgflare`,
      );
    }
    if (known.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${row.name} changed after it was applied; migrations are forward-only, add a new file instead`,
      );
    }
    state.set(row.version, row.checksum);
  }
  return state;
}

async function resolveOperatorSchema(client: DbClient, requested: string | undefined): Promise<string> {
  const { rows } = await client.query<{ value: string }>(
    "SELECT value FROM df._config WHERE key = 'operator_schema'",
  );
  const recorded = rows[0]?.value;
  if (recorded && requested && recorded !== requested) {
    throw new MigrationError(
      `operators are installed in schema "${recorded}"; refusing to move them to "${requested}"`,
    );
  }
  const schema = recorded ?? requested ?? DEFAULT_OPERATOR_SCHEMA;
  if (!recorded) {
    await client.query("INSERT INTO df._config (key, value) VALUES ('operator_schema', $1)", [schema]);
  }
  return schema;
}

/** The highest applied version, or 0 when schema `df` is not installed. */
export async function currentVersion(client: DbClient): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>(
    "SELECT CASE WHEN to_regclass('df._migrations') IS NULL THEN 0 END AS v",
  );
  if (rows[0]?.v === 0) return 0;
  const r = await client.query<{ v: number }>('SELECT coalesce(max(version), 0) AS v FROM df._migrations');
  return r.rows[0]?.v ?? 0;
}
