/**
 * SPEC §4.4: df.setvar / getvar / unsetvar / clearvars, per-role variables, refused inside a workflow.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlError, useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
let alice: pg.Pool;

beforeAll(async () => {
  const role = t.role('alice');
  await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
  await t.query(`GRANT USAGE ON SCHEMA df TO ${role}`);
  await t.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO ${role}`);
  await t.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA df TO ${role}`);
  alice = new pg.Pool({ connectionString: t.url(role), max: 2 });
});
afterAll(async () => {
  await alice?.end();
});

const error = (sql: string, settings: string[] = []) => sqlError(t, sql, settings);

describe('variables', () => {
  it('setvar upserts and returns OK; getvar reads the value back', async () => {
    expect(await t.query(`SELECT df.setvar('limit', '10') AS a`)).toEqual([{ a: 'OK' }]);
    expect(await t.query(`SELECT df.setvar(name => 'limit', value => '20') AS a, df.getvar('limit') AS v`)).toEqual([
      { a: 'OK', v: '20' },
    ]);
    expect(await t.query(`SELECT name, value, owner::text FROM df.vars`)).toEqual([{ name: 'limit', value: '20', owner: 'pgflare_owner' }]);
  });

  it('getvar of an unknown name is NULL; setvar and getvar are STRICT', async () => {
    expect(await t.query(`SELECT df.getvar('nope') AS a, df.setvar('x', NULL) AS b, df.getvar(NULL) AS c`)).toEqual([
      { a: null, b: null, c: null },
    ]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.vars WHERE name = 'x'`)).toEqual([{ n: 0 }]);
  });

  it('does not validate names', async () => {
    expect(await t.query(`SELECT df.setvar('has space', 'v') AS a, df.getvar('has space') AS b`)).toEqual([{ a: 'OK', b: 'v' }]);
  });

  it('unsetvar removes one variable, clearvars all of the caller’s', async () => {
    await t.query(`SELECT df.setvar('a', '1'), df.setvar('b', '2')`);
    expect(await t.query(`SELECT df.unsetvar('a') AS r`)).toEqual([{ r: 'OK' }]);
    expect(await t.query(`SELECT df.getvar('a') AS a, df.getvar('b') AS b`)).toEqual([{ a: null, b: '2' }]);
    expect(await t.query(`SELECT df.unsetvar('never-set') AS r`)).toEqual([{ r: 'OK' }]);
    expect(await t.query(`SELECT df.clearvars() AS r`)).toEqual([{ r: 'OK' }]);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.vars`)).toEqual([{ n: 0 }]);
  });

  it('each role has its own namespace, and clearvars leaves other roles alone', async () => {
    await t.query(`SELECT df.setvar('shared', 'owner-value')`);
    await alice.query(`SELECT df.setvar('shared', 'alice-value')`);
    expect((await alice.query(`SELECT df.getvar('shared') AS v`)).rows).toEqual([{ v: 'alice-value' }]);
    expect(await t.query(`SELECT df.getvar('shared') AS v`)).toEqual([{ v: 'owner-value' }]);
    await alice.query(`SELECT df.clearvars()`);
    expect((await alice.query(`SELECT df.getvar('shared') AS v`)).rows).toEqual([{ v: null }]);
    expect(await t.query(`SELECT df.getvar('shared') AS v`)).toEqual([{ v: 'owner-value' }]);
  });

  it('setvar, unsetvar and clearvars refuse to run inside a workflow (55000); getvar still works', async () => {
    const inWorkflow = [`SET df.in_workflow = 'true'`];
    expect(await error(`SELECT df.setvar('a', '1')`, inWorkflow)).toEqual({
      code: '55000',
      message: 'df.setvar() cannot be called inside a workflow - set variables before starting the workflow',
    });
    expect(await error(`SELECT df.unsetvar('a')`, inWorkflow)).toEqual({
      code: '55000',
      message: 'df.unsetvar() cannot be called inside a workflow - manage variables before starting the workflow',
    });
    expect(await error(`SELECT df.clearvars()`, inWorkflow)).toEqual({
      code: '55000',
      message: 'df.clearvars() cannot be called inside a workflow - manage variables before starting the workflow',
    });
    const c = await t.owner.connect();
    try {
      await c.query(`SET df.in_workflow = 'true'`);
      expect((await c.query(`SELECT df.getvar('shared') AS v`)).rows).toEqual([{ v: 'owner-value' }]);
    } finally {
      await c.query('RESET ALL');
      c.release();
    }
  });

  it('used as a workflow step in the same statement, setvar/unsetvar/clearvars trip the §1.4 helper trap', async () => {
    for (const helper of ['df.setvar', 'df.unsetvar', 'df.clearvars']) {
      const call = helper === 'df.setvar' ? `df.setvar('trap', '1')` : helper === 'df.unsetvar' ? `df.unsetvar('trap')` : 'df.clearvars()';
      expect(await error(`SELECT df.seq(${call}, 'SELECT 1')`)).toEqual({
        code: '55000',
        message: `${helper} cannot be used as a workflow step. Call ${helper} before df.start().`,
      });
    }
    // a later statement is not affected by the marker
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT df.setvar('trap', '1')`);
      expect((await c.query(`SELECT df.seq('SELECT 1', 'SELECT 2') IS NOT NULL AS ok`)).rows).toEqual([{ ok: true }]);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });

  it('setvar, unsetvar and clearvars leave the §1.4 helper marker for the current statement', async () => {
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      for (const [call, helper] of [
        [`df.setvar('m', '1')`, 'df.setvar'],
        [`df.unsetvar('m')`, 'df.unsetvar'],
        [`df.clearvars()`, 'df.clearvars'],
      ]) {
        const { rows } = await c.query(
          `WITH r AS MATERIALIZED (SELECT ${call} AS r)
           SELECT r.r, current_setting('df.non_future_helper') = $1 || E'\\n' || df._helper_stamp() AS marked FROM r`,
          [helper],
        );
        expect(rows).toEqual([{ r: 'OK', marked: true }]);
      }
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  });
});
