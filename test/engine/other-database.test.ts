/**
 * df.start(…, database => 'other') (0034, src/engine/executors/other-database.ts): the steps run in a
 * second database of the test server over the worker's connection to it, exactly once across a crash
 * between their commit there and their checkpoint here; refused with a named setting where the worker
 * has no connection or cannot act as the owner there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import pg from 'pg';
import { createRole, useTestDb } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';
import type { CrashPoint, PointHandler } from '../../src/engine/points.ts';
import type { Db } from '../../src/engine/db.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { otherDatabasePools, urlForDatabase } from '../../src/runtime/node/other-databases.ts';

const t = useTestDb();
const other = `${t.name}_other`;
let superOther: pg.Pool;
const pools = otherDatabasePools('', {}, 2);
/** The Node worker's default: the test database's owner URL with the database replaced. */
let databases: (name: string) => Db | null;
const extra: { end(): Promise<void> }[] = [];

beforeAll(async () => {
  await t.superuser.query(`CREATE DATABASE ${other} OWNER ${inject('pg').owner}`);
  superOther = new pg.Pool({ connectionString: urlForDatabase(t.url('postgres', 'postgres'), other)!, max: 2 });
  superOther.on('error', () => undefined);
  await superOther.query(`CREATE TABLE effects (n int); ALTER TABLE effects OWNER TO ${inject('pg').owner}`);
  const byUrl = otherDatabasePools(t.url(), {}, 2);
  extra.push(byUrl);
  databases = byUrl.databases;
});

afterAll(async () => {
  await Promise.all(extra.map((p) => p.end()));
  await pools.end();
  await superOther.end();
  await t.superuser.query(`DROP DATABASE IF EXISTS ${other} WITH (FORCE)`);
});

class Crash extends Error {}
function crashOnce(point: CrashPoint): PointHandler {
  let fired = false;
  return (p: CrashPoint) => {
    if (p === point && !fired) {
      fired = true;
      throw new Crash(`crash at ${point}`);
    }
  };
}

const effects = async () => (await superOther.query<{ n: number }>('SELECT count(*)::int AS n FROM effects')).rows[0].n;
const marks = async () =>
  (await superOther.query<{ key: string; result: string | null }>(`SELECT key, result FROM pgflare.step_marks_${await ownerOid()} ORDER BY key`)).rows;
const ownerOid = async () => (await t.query<{ oid: string }>('SELECT oid::text FROM pg_roles WHERE rolname = current_user'))[0].oid;
const startIn = async (dsl: string, database = other) => (await t.query<{ id: string }>(`SELECT df.start(${dsl}, NULL, $1) AS id`, [database]))[0].id;
const failure = async (id: string) =>
  JSON.parse((await t.query<{ detail: string }>(`SELECT detail FROM df.events WHERE instance_id = $1 AND kind = 'failed'`, [id]))[0].detail) as { message: string; code: string };

describe('steps in another database', () => {
  it('df.start records the database in every node; the chain runs there and its effect counts once', async () => {
    await superOther.query('TRUNCATE effects');
    const id = await startIn(`'INSERT INTO effects VALUES (7) RETURNING n' ~> 'SELECT current_database() AS db, current_user AS who'`);
    const nodes = await t.query(`SELECT options->>'database' AS d FROM df.nodes WHERE instance_id = $1`, [id]);
    expect(nodes.length).toBeGreaterThan(1);
    expect(nodes.every((n) => n.d === other)).toBe(true);
    await engineFor(t, { databases }).drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ db: other, who: inject('pg').owner }] } });
    expect(await effects()).toBe(1);
    // Nothing ran in the df database, and every marker went with its checkpoint.
    expect(await t.query(`SELECT to_regclass('public.effects') AS r`)).toEqual([{ r: null }]);
    expect(await marks()).toEqual([]);
  });

  it('a crash between the step committing there and its checkpoint here: the re-run finds the marker and does not run the step again', async () => {
    await superOther.query('TRUNCATE effects');
    const id = await startIn(`'INSERT INTO effects VALUES (5) RETURNING n'`);
    const e = engineFor(t, { databases, leaseMs: 60_000 });
    await e.runOnce(); // the activation
    await expect(engineFor(t, { databases, leaseMs: 60_000, points: crashOnce('after-effect') }).runOnce()).rejects.toBeInstanceOf(Crash);
    expect(await effects()).toBe(1);
    const [mark] = await marks();
    expect(mark.key).toMatch(new RegExp(`^${id}:`));
    expect(JSON.parse(mark.result!)).toMatchObject({ rows: [{ n: 5 }] });
    // The lease holds the row until it expires.
    expect(await e.drain()).toBe(0);
    await e.drain({ now: new Date(Date.now() + 61_000) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ n: 5 }] } });
    expect(await effects()).toBe(1);
    const [node] = await t.query(`SELECT attempts FROM df.nodes WHERE instance_id = $1 AND node_type = 'SQL'`, [id]);
    expect(node.attempts).toBe(2);
    expect(await marks()).toEqual([]);
  });

  it('a failing step there is rolled back with its marker and fails the instance with its SQLSTATE', async () => {
    await superOther.query('TRUNCATE effects');
    const id = await startIn(`'INSERT INTO effects SELECT 1/0'`);
    await engineFor(t, { databases }).drain();
    expect((await outcome(t, id)).status).toBe('failed');
    expect(await failure(id)).toMatchObject({ code: '22012', message: expect.stringContaining('division by zero') });
    expect(await effects()).toBe(0);
    expect(await marks()).toEqual([]);
  });

  it('a statement that cannot run in a transaction block runs there too (at least once, no marker)', async () => {
    const id = await startIn(`'VACUUM effects'`);
    await engineFor(t, { databases }).drain();
    expect((await outcome(t, id)).status).toBe('completed');
    const [v] = (await superOther.query(`SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = 'effects'`)).rows;
    expect(v).toBeDefined();
  });

  it('no connection configured: the step fails with 08001 naming PGFLARE_DATABASE_URL_<NAME>', async () => {
    const id = await startIn(`'INSERT INTO effects VALUES (1)'`);
    await engineFor(t, { databases: pools.databases /* a connection string that is not a URL: none */ }).drain();
    expect((await outcome(t, id)).status).toBe('failed');
    expect(await failure(id)).toMatchObject({ code: '08001', message: expect.stringContaining(`PGFLARE_DATABASE_URL_${other.toUpperCase()}`) });
    const id2 = await startIn(`'SELECT 1'`);
    await engineFor(t).drain(); // an engine without the port (the Workers runtime without the variable)
    expect(await failure(id2)).toMatchObject({ code: '08001' });
  });

  it("another role's steps: 42501 while the worker connects there as itself; they run once it connects as that role", async () => {
    const role = t.role('other_db');
    await createRole(t, role, `LOGIN PASSWORD 'pw'`);
    await t.query('SELECT df.grant_usage($1)', [role]);
    await superOther.query(`GRANT INSERT, SELECT ON effects TO ${role}; CREATE SCHEMA IF NOT EXISTS pgflare AUTHORIZATION ${inject('pg').owner}`);
    await superOther.query('TRUNCATE effects');
    const c = await t.superuser.connect();
    const startAs = async (sql: string) => (await c.query(`SELECT df.start($1, NULL, $2) AS id`, [sql, other])).rows[0].id as string;
    try {
      await c.query(`SET ROLE ${role}`);
      const first = await startAs('INSERT INTO effects VALUES (3) RETURNING current_user AS who');
      await engineFor(t, { databases }).drain();
      expect(await failure(first)).toMatchObject({ code: '42501', message: expect.stringContaining(`PGFLARE_DATABASE_URL_${other.toUpperCase()}`) });
      expect(await effects()).toBe(0);
      // A worker configured with a connection string for that role (PGFLARE_DATABASE_URL_<NAME>).
      const env = { [`PGFLARE_DATABASE_URL_${other.toUpperCase()}`]: urlForDatabase(t.url(role, 'pw'), other)! };
      const asRole = otherDatabasePools(t.url(), env, 1);
      extra.push(asRole);
      // It may not create its marker table in schema pgflare yet: refused, naming the grant.
      const second = await startAs('INSERT INTO effects VALUES (3) RETURNING current_user AS who');
      await engineFor(t, { databases: asRole.databases }).drain();
      expect(await failure(second)).toMatchObject({ code: '42501', message: expect.stringContaining(`GRANT USAGE, CREATE ON SCHEMA pgflare TO ${role}`) });
      expect(await effects()).toBe(0);
      await superOther.query(`GRANT USAGE, CREATE ON SCHEMA pgflare TO ${role}`);
      const third = await startAs('INSERT INTO effects VALUES (3) RETURNING current_user AS who');
      await engineFor(t, { databases: asRole.databases }).drain();
      expect(await outcome(t, third)).toMatchObject({ status: 'completed', result: { rows: [{ who: role }] } });
      expect(await effects()).toBe(1);
    } finally {
      await c.query('RESET ROLE');
      c.release();
    }
  });

  it('the Node worker derives a connection for each database from its own connection string', () => {
    expect(urlForDatabase('postgres://u:p%40ss@h:5433/main?sslmode=require', 'other db')).toBe('postgres://u:p%40ss@h:5433/other%20db?sslmode=require');
    expect(urlForDatabase('host=h dbname=main', 'x')).toBeNull();
    const db = createPgDb({ connectionString: urlForDatabase(t.url(), other)!, max: 1 });
    extra.push(db);
    return expect(db.withClient(async (c) => (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d)).resolves.toBe(other);
  });
});
