/**
 * Steps in another database on the Workers runtime (src/engine/executors/other-database.ts): the
 * connection is the second connection string PGFLARE_DATABASE_URL_<NAME>; without one the step fails
 * with 08001 naming it.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { useTestDb } from '../helpers/db.ts';
import { outcome } from '../helpers/engine.ts';
import { urlForDatabase } from '../../src/runtime/node/other-databases.ts';
import { pump, useWorkerd } from './harness.ts';

const t = useTestDb();
const other = `${t.name}_other`;
const unset = `${t.name}_unset`;
const w = useWorkerd(t, { bindings: { [`PGFLARE_DATABASE_URL_${other.toUpperCase()}`]: urlForDatabase(t.url(), other)! } });
let superOther: pg.Pool;

beforeAll(async () => {
  for (const d of [other, unset]) await t.superuser.query(`CREATE DATABASE ${d} OWNER ${inject('pg').owner}`);
  superOther = new pg.Pool({ connectionString: urlForDatabase(t.url('postgres', 'postgres'), other)!, max: 1 });
  superOther.on('error', () => undefined);
  await superOther.query(`CREATE TABLE effects (n int); ALTER TABLE effects OWNER TO ${inject('pg').owner}`);
});

afterAll(async () => {
  await superOther.end();
  for (const d of [other, unset]) await t.superuser.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
});

const startIn = async (dsl: string, database: string) => (await t.query<{ id: string }>(`SELECT df.start(${dsl}, NULL, $1) AS id`, [database]))[0].id;

describe('workerd: steps in another database', () => {
  it('run over PGFLARE_DATABASE_URL_<NAME>, the effect once, the result recorded here', async () => {
    const id = await startIn(`'INSERT INTO effects VALUES (4) RETURNING n, current_database() AS db'`, other);
    await w.sent();
    await w.cron();
    await pump(w);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ n: 4, db: other }] } });
    expect((await superOther.query('SELECT count(*)::int AS n FROM effects')).rows[0].n).toBe(1);
  });

  it('without the variable the step fails with 08001 naming it', async () => {
    const id = await startIn(`'SELECT 1'`, unset);
    await w.sent();
    await w.cron();
    await pump(w);
    expect((await outcome(t, id)).status).toBe('failed');
    const [e] = await t.query<{ detail: string }>(`SELECT detail FROM df.events WHERE instance_id = $1 AND kind = 'failed'`, [id]);
    expect(JSON.parse(e.detail)).toMatchObject({ code: '08001', message: expect.stringContaining(`PGFLARE_DATABASE_URL_${unset.toUpperCase()}`) });
  });
});
