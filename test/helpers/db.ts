/**
 * One database per test file, cloned from the migrated template. The clone is dropped after the file
 * passes and kept (its name printed) when any test in it failed, so the rows can be inspected.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import type { Db } from '../../src/engine/db.ts';

export interface TestDb {
  name: string;
  port: number;
  /** Connection string for `user` (default: the owner role that ran the migration). */
  url(user?: string, password?: string): string;
  /** Connected as the database owner (not a superuser), like a user who installed pgflare. */
  owner: pg.Pool;
  /** Connected as the cluster superuser, for setup such as CREATE ROLE. */
  superuser: pg.Pool;
  /** The owner's pool behind the engine's database port. */
  db: Db;
  /** Runs one statement as the owner and returns its rows. */
  query<R = any>(text: string, params?: unknown[]): Promise<R[]>;
  /** A role name unique to this file (roles are cluster-wide). */
  role(base: string): string;
}

export function useTestDb(): TestDb {
  const cfg = inject('pg');
  const name = `t_${randomBytes(5).toString('hex')}`;
  const url = (user = cfg.owner, password = user === cfg.owner ? cfg.ownerPassword : user === 'postgres' ? 'postgres' : 'pw') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${cfg.port}/${name}`;
  let failed = false;
  const t = {
    name,
    port: cfg.port,
    url,
    role: (base: string) => `${base}_${name.slice(2)}`,
  } as TestDb;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${cfg.port}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${cfg.template} OWNER ${cfg.owner}`);
    await admin.end();
    const pgdb = createPgDb({ connectionString: url(), max: 10 });
    t.owner = pgdb.pool;
    t.db = pgdb;
    t.superuser = new pg.Pool({ connectionString: url('postgres', 'postgres'), max: 4 });
    t.superuser.on('error', () => undefined);
    t.query = async (text, params) => (await t.owner.query(text, params)).rows;
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') failed = true;
  });

  afterAll(async () => {
    await t.owner?.end();
    await t.superuser?.end();
    const admin = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${cfg.port}/postgres` });
    await admin.connect();
    if (failed) {
      console.warn(`kept database ${name} of a failed test (port ${cfg.port}); see test/README.md`);
      await admin.query(`INSERT INTO pgflare_test_kept (name) VALUES ($1)`, [name]).catch(() => undefined);
    } else {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    await admin.end();
  });

  return t;
}

/** An empty database owned by the (non-superuser) owner role, for migrator tests; dropped after the file. */
export function useEmptyDatabases(): { create(): Promise<string> } {
  const cfg = inject('pg');
  const made: string[] = [];
  const admin = () => new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${cfg.port}/postgres` });
  afterAll(async () => {
    const c = admin();
    await c.connect();
    for (const name of made) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  return {
    async create() {
      const name = `e_${randomBytes(5).toString('hex')}`;
      const c = admin();
      await c.connect();
      await c.query(`CREATE DATABASE ${name} OWNER ${cfg.owner} TEMPLATE template0`);
      await c.end();
      made.push(name);
      return `postgres://${cfg.owner}:${cfg.ownerPassword}@127.0.0.1:${cfg.port}/${name}`;
    },
  };
}

/** Runs `sql` as the owner (after `settings`) and returns the error it raised; fails if it raised none. */
export async function sqlError(t: TestDb, sql: string, settings: string[] = []): Promise<{ code: string; message: string }> {
  const c = await t.owner.connect();
  try {
    for (const s of settings) await c.query(s);
    await c.query(sql);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  } finally {
    await c.query('RESET ALL');
    c.release();
  }
  throw new Error(`no error from ${sql}`);
}

/** Runs `sql` as `role` in its own transaction (SET LOCAL ROLE; the owner must be a member of the role), returning the rows. */
export async function asRole<R = any>(
  t: TestDb,
  role: string,
  sql: string,
  params: unknown[] = [],
  via: 'owner' | 'superuser' = 'owner',
): Promise<R[]> {
  const c = await t[via].connect();
  try {
    await c.query('BEGIN');
    await c.query(`SET LOCAL ROLE ${role}`);
    const { rows } = await c.query(sql, params);
    await c.query('COMMIT');
    return rows;
  } catch (e) {
    await c.query('ROLLBACK');
    throw e;
  } finally {
    c.release();
  }
}

/** A LOGIN role unique to this file, set up with df.grant_usage, that the owner may SET ROLE to (as the REST API does). */
export async function grantedRole(t: TestDb, base: string): Promise<string> {
  const role = t.role(base);
  await createRole(t, role, 'LOGIN');
  await t.query('SELECT df.grant_usage($1)', [role]);
  await grantToOwner(t, role);
  return role;
}

/**
 * Creates a role as a cluster administrator would (the superuser), leaving the owner what df.grant_usage
 * needs to make the role's step runner. On PostgreSQL 14 and 15 the owner's CREATEROLE covers every
 * role; from 16 on it covers only roles the owner created itself, for which it holds ADMIN OPTION without
 * SET or INHERIT. That grant is made here, as an operator must (docs/SECURITY.md, "What the operator must
 * configure"), so the tests see the same owner on every version.
 */
export async function createRole(t: TestDb, name: string, options = ''): Promise<void> {
  const cfg = inject('pg');
  await t.superuser.query(`CREATE ROLE ${name} ${options}`);
  if (cfg.serverVersionNum >= 160000) {
    await t.superuser.query(`GRANT ${name} TO ${cfg.owner} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
  }
}

/**
 * Makes the owner a member of `role` that may SET ROLE to it (as the REST API needs). From PostgreSQL 16
 * on a GRANT that finds createRole's ADMIN OPTION grant only changes the options it names, so it names
 * them; before 16 there are none to name.
 */
export async function grantToOwner(t: TestDb, role: string): Promise<void> {
  const cfg = inject('pg');
  await t.superuser.query(`GRANT ${role} TO ${cfg.owner}${cfg.serverVersionNum >= 160000 ? ' WITH INHERIT TRUE, SET TRUE' : ''}`);
}
