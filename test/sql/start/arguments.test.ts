/**
 * SPEC §5 / §5.0: df.start's signature, transaction_mode handling, and the database argument.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

async function error(sql: string, params: unknown[] = []) {
  try {
    await t.query(sql, params);
  } catch (e: any) {
    return { code: e.code, message: e.message, hint: e.hint };
  }
  throw new Error(`no error from ${sql}`);
}

describe('signature', () => {
  it('has the pg_durable parameter names and defaults, and returns text', async () => {
    const [r] = await t.query(`
      SELECT pg_get_function_arguments('df.start(text,text,text,text)'::regprocedure) AS args,
             pg_get_function_result('df.start(text,text,text,text)'::regprocedure) AS result`);
    expect(r).toEqual({
      args: "fut text, label text DEFAULT NULL::text, database text DEFAULT NULL::text, transaction_mode text DEFAULT 'caller'::text",
      result: 'text',
    });
  });

  it('works with 1, 2, 3 positional arguments and in named notation', async () => {
    const [r] = await t.query(`
      SELECT df.start('SELECT 1') AS a, df.start('SELECT 1', 'l') AS b, df.start('SELECT 1', 'l', NULL) AS c,
             df.start(fut => 'SELECT 1', transaction_mode => 'caller') AS d`);
    for (const id of Object.values(r)) expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([{ n: 4 }]);
  });

  it('transaction_mode is case-insensitive', async () => {
    const [r] = await t.query(`SELECT df.start('SELECT 1', transaction_mode => 'CaLLeR') AS id`);
    expect(r.id).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe('transaction_mode', () => {
  it('an unknown mode is rejected with 22023', async () => {
    expect(await error(`SELECT df.start('SELECT 1', NULL, NULL, 'autonomous')`)).toMatchObject({
      code: '22023',
      message: `invalid transaction_mode "autonomous" for df.start(): expected 'caller' or 'new'`,
    });
  });

  it("'new' without dblink (not installed here) is 0A000 naming what to install; nothing is written", async () => {
    // test/sql/start/transaction-mode-new.test.ts covers 'new' with dblink and its loopback server.
    const [before] = await t.query('SELECT count(*)::int AS n FROM df.instances');
    const e = await error(`SELECT df.start('SELECT 1', transaction_mode => 'NEW')`);
    expect(e).toMatchObject({
      code: '0A000',
      message: `df.start() with transaction_mode => 'new' needs the dblink extension, which is not installed in database "${t.name}"`,
    });
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([before]);
  });

  it("'new' inside a workflow step gives pg_durable's error", async () => {
    const c = await t.owner.connect();
    try {
      await c.query(`SET df.in_workflow = 'true'`);
      await expect(c.query(`SELECT df.start('SELECT 1', transaction_mode => 'new')`)).rejects.toMatchObject({
        code: '0A000',
        message:
          "df.start() with transaction_mode => 'new' cannot be called inside a workflow - a df.sql() node already runs as a single autocommitted statement, so a plain df.start() there is already independent of any caller transaction",
      });
    } finally {
      await c.query('RESET df.in_workflow');
      c.release();
    }
  });

  it('a NULL fut is an error, not a silent NULL', async () => {
    expect(await error(`SELECT df.start(NULL)`)).toMatchObject({ code: '22004', message: 'df.start(): fut must not be NULL' });
  });
});

describe('database', () => {
  it('an unknown database is rejected with 3D000', async () => {
    expect(await error(`SELECT df.start('SELECT 1', NULL, 'no_such_db_x')`)).toMatchObject({
      code: '3D000',
      message: 'database "no_such_db_x" does not exist',
    });
  });

  it('another existing database is accepted (0034): every node carries it, the instance records it', async () => {
    const [{ id }] = await t.query(`SELECT df.start('SELECT 1', NULL, 'postgres') AS id`);
    expect(await t.query(`SELECT database, (SELECT array_agg(options->>'database') FROM df.nodes WHERE instance_id = $1) AS d FROM df.instances WHERE id = $1`, [id])).toEqual([
      { database: 'postgres', d: ['postgres'] },
    ]);
    const [{ id: here }] = await t.query(`SELECT df.start('SELECT 1', NULL, current_database()) AS id`);
    expect(await t.query(`SELECT options FROM df.nodes WHERE instance_id = $1`, [here])).toEqual([{ options: null }]);
  });
});
