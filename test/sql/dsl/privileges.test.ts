// The DSL functions are SECURITY INVOKER, so a role other than the owner needs EXECUTE on the internal
// helpers they call: USAGE alone is not enough, df.grant_usage grants what is needed.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const EVERYTHING = `
  'SELECT 1' |=> 'a' ~> df.join3(df.sleep(1), df.wait_for_signal('s', 3), @> (df.break('v') ~> 'x'))
  ~> ('c' ?> df.if_rows('a', 'x', 'y') !> df.loop('b', 'c'))
  ~> ('p' | 'q' & '{"node_type":"SQL","query":"r"}') ~> df.wait_for_schedule('0 9 * * MON-FRI')
  ~> df.http('https://x.vault.azure.net', 'GET') ~> df.http_multipart('https://x.vault.azure.net', parts => '[{"name":"a","data_b64":""}]')`;

describe('a non-owner role', () => {
  let user: string;
  let pool: pg.Pool;
  beforeAll(async () => {
    user = t.role('dsl_priv');
    await t.superuser.query(`CREATE ROLE ${user} LOGIN PASSWORD 'pw'`);
    await t.query(`GRANT USAGE ON SCHEMA df TO ${user}`);
    await t.query(`GRANT EXECUTE ON FUNCTION df.http(text,text,text,jsonb,integer), df.http_multipart(text,text,jsonb,jsonb,integer) TO ${user}`);
    pool = new pg.Pool({ connectionString: t.url(user, 'pw'), max: 1 });
  });
  afterAll(async () => {
    await pool.end();
    await t.query(`SELECT df.revoke_usage('${user}')`);
    await t.query(`REVOKE ALL ON SCHEMA df FROM ${user}`);
    await t.query(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA df FROM ${user}`);
    await t.superuser.query(`DROP ROLE ${user}`);
  });

  it('cannot build a workflow with only USAGE on df', async () => {
    await expect(pool.query(`SELECT 'a' ~> 'b'`)).rejects.toMatchObject({ code: '42501' });
  });

  it('can build every construct once df.grant_usage(include_http) ran', async () => {
    await t.query(`SELECT df.grant_usage('${user}', include_http => true)`);
    const c = await pool.connect();
    try {
      await c.query(`SET pg_durable.http_policy = 'azure'`);
      const { rows } = await c.query(`SELECT ${EVERYTHING} AS e`);
      const owner = (await t.owner.connect());
      try {
        await owner.query(`SET pg_durable.http_policy = 'azure'`);
        const mine = await owner.query(`SELECT ${EVERYTHING} AS e`);
        expect(rows[0].e).toBe(mine.rows[0].e);
      } finally {
        await owner.query('RESET pg_durable.http_policy');
        owner.release();
      }
      await expect(c.query(`DO $$ BEGIN PERFORM df._mark_helper('df.setvar'); PERFORM df.sql('x') ~> 'y'; END $$`)).rejects.toMatchObject({
        code: '55000',
      });
    } finally {
      c.release();
    }
  });
});
