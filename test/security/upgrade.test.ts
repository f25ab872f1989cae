/**
 * Upgrading to migration 0015: roles granted usage before it keep working once the owner re-runs
 * df.grant_usage, and delegates that could call df.grant_usage/df.revoke_usage still can (and, from
 * 0024 on, their grantees get step runners).
 */
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it, inject } from 'vitest';
import { useEmptyDatabases } from '../helpers/db.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { migrate } from '../../src/migrate/runner.ts';
import { loadMigrationsFromDir } from '../../src/migrate/load-dir.ts';
import { createEngine } from '../../src/engine/engine.ts';

const migrations = loadMigrationsFromDir(join(import.meta.dirname, '../../migrations'));
const RUNNERS = migrations.findIndex((m) => m.name === '0015_runners');
const FLAT_GRANTS = migrations.findIndex((m) => m.name === '0024_grants_comments');
const dbs = useEmptyDatabases();

describe('upgrades of df.grant_usage', () => {
  it('keeps delegates able to grant, and re-running grant_usage makes the runner', async () => {
    const url = await dbs.create();
    const cfg = inject('pg');
    const dbName = new URL(url).pathname.slice(1);
    const delegate = `deleg_${dbName}`;
    const user = `user_${dbName}`;
    const su = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${cfg.port}/${dbName}` });
    await su.connect();
    const db = createPgDb({ connectionString: url, max: 2 });
    try {
      await migrate(db, { migrations: migrations.slice(0, RUNNERS) });
      await su.query(`CREATE ROLE ${delegate} LOGIN PASSWORD 'pw'; CREATE ROLE ${user} LOGIN PASSWORD 'pw'`);
      // From PostgreSQL 16 on, the owner's CREATEROLE covers only roles it created (see createRole in helpers/db.ts).
      if (cfg.serverVersionNum >= 160000) {
        for (const r of [delegate, user]) await su.query(`GRANT ${r} TO ${cfg.owner} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
      }
      await db.withClient((c) => c.query(`SELECT df.grant_usage($1, with_grant => true)`, [delegate]));
      await migrate(db, { migrations });
      const asDelegate = new pg.Client({ connectionString: `postgres://${delegate}:pw@127.0.0.1:${cfg.port}/${dbName}` });
      await asDelegate.connect();
      try {
        await asDelegate.query(`SELECT df.grant_usage($1)`, [user]);
        // Since 0024 the delegate's grant makes the grantee's step runner too: its steps run, as itself.
        const asUser = new pg.Pool({ connectionString: `postgres://${user}:pw@127.0.0.1:${cfg.port}/${dbName}`, max: 1 });
        const [{ id: byUser }] = (await asUser.query(`SELECT df.start('SELECT current_user::text AS u') AS id`)).rows;
        await asUser.end();
        await createEngine({ db }).drain();
        const [ran] = await db.withClient(async (c) => (await c.query(`SELECT status, output FROM df.instances WHERE id = $1`, [byUser])).rows);
        expect(ran).toEqual({ status: 'completed', output: JSON.stringify({ rows: [{ u: user }], row_count: 1 }) });
        await asDelegate.query(`SELECT df.revoke_usage($1)`, [user]);
      } finally {
        await asDelegate.end();
      }
      // The owner re-runs grant_usage for the delegate: now it has a runner and its steps run.
      await db.withClient((c) => c.query(`SELECT df.grant_usage($1, with_grant => true)`, [delegate]));
      const asDelegate2 = new pg.Pool({ connectionString: `postgres://${delegate}:pw@127.0.0.1:${cfg.port}/${dbName}`, max: 1 });
      const [{ id }] = (await asDelegate2.query(`SELECT df.start('SELECT current_user::text AS u') AS id`)).rows;
      await asDelegate2.end();
      await createEngine({ db }).drain();
      const [row] = await db.withClient(async (c) => (await c.query(`SELECT status, output FROM df.instances WHERE id = $1`, [id])).rows);
      expect(row).toEqual({ status: 'completed', output: JSON.stringify({ rows: [{ u: delegate }], row_count: 1 }) });
    } finally {
      await db.end();
      for (const r of [user, delegate]) await su.query(`DROP OWNED BY ${r}; DROP ROLE ${r}`).catch(() => undefined);
      await su.end();
    }
  });

  it('a delegate granted before 0024 grants after it, and its grantee gets a runner', async () => {
    const url = await dbs.create();
    const cfg = inject('pg');
    const dbName = new URL(url).pathname.slice(1);
    const delegate = `deleg24_${dbName}`;
    const user = `user24_${dbName}`;
    const as = (r: string) => new pg.Pool({ connectionString: `postgres://${r}:pw@127.0.0.1:${cfg.port}/${dbName}`, max: 1 });
    const su = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${cfg.port}/${dbName}` });
    await su.connect();
    const db = createPgDb({ connectionString: url, max: 2 });
    try {
      await migrate(db, { migrations: migrations.slice(0, FLAT_GRANTS) });
      await su.query(`CREATE ROLE ${delegate} LOGIN PASSWORD 'pw'; CREATE ROLE ${user} LOGIN PASSWORD 'pw'`);
      // From PostgreSQL 16 on, the owner's CREATEROLE covers only roles it created (see createRole in helpers/db.ts).
      if (cfg.serverVersionNum >= 160000) {
        for (const r of [delegate, user]) await su.query(`GRANT ${r} TO ${cfg.owner} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
      }
      await db.withClient((c) => c.query(`SELECT df.grant_usage($1, with_grant => true)`, [delegate]));
      await migrate(db, { migrations });
      const d = as(delegate);
      await d.query(`SELECT df.grant_usage($1)`, [user]);
      const u = as(user);
      const [{ id }] = (await u.query(`SELECT df.start('SELECT current_user::text AS u') AS id`)).rows;
      await u.end();
      await createEngine({ db }).drain();
      const [row] = await db.withClient(async (c) => (await c.query(`SELECT status, output FROM df.instances WHERE id = $1`, [id])).rows);
      expect(row).toEqual({ status: 'completed', output: JSON.stringify({ rows: [{ u: user }], row_count: 1 }) });
      await d.query(`SELECT df.revoke_usage($1)`, [user]);
      await d.end();
      const [left] = await db.withClient(async (c) => (await c.query(
        `SELECT has_schema_privilege($1, 'df', 'USAGE') AS usage, (SELECT count(*)::int FROM df._runners WHERE role = $1::regrole) AS runners`, [user])).rows);
      expect(left).toEqual({ usage: false, runners: 0 });
    } finally {
      await db.end();
      for (const r of [user, delegate]) await su.query(`DROP OWNED BY ${r}; DROP ROLE ${r}`).catch(() => undefined);
      await su.end();
    }
  });
});
