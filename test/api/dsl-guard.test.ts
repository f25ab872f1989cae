/**
 * df._eval_dsl: DSL text that arrives over HTTP is checked token by token before anything runs; SQL
 * injection attempts are rejected with PF002 (the API's 422 invalid_workflow) and leave no trace.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';

const t = useTestDb();

async function evalDsl(expr: string): Promise<string> {
  const [r] = await t.query<{ v: string }>('SELECT df._eval_dsl($1) AS v', [expr]);
  return r!.v;
}

async function rejection(expr: string): Promise<{ code: string; message: string }> {
  try {
    await evalDsl(expr);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error(`accepted: ${expr}`);
}

beforeAll(async () => {
  await t.query('CREATE TABLE victim (x int)');
  await t.query('INSERT INTO victim VALUES (1)');
});

describe('accepted DSL', () => {
  it('evaluates operators and DSL functions to the same envelope as plain SQL', async () => {
    const cases = [
      `'SELECT 1' ~> 'SELECT 2'`,
      `'SELECT 20 AS n' |=> 'n' ~> 'SELECT $n + 22 AS answer'`,
      `('SELECT 1' & 'SELECT 2') | 'SELECT 3'`,
      `'SELECT true' ?> 'SELECT 1' !> 'SELECT 2'`,
      `df.seq(df.sql('SELECT 1'), df.sleep(1))`,
      `df.as('SELECT 1', 'x') ~> df.if('SELECT true', 'SELECT 1', 'SELECT 2')`,
      `df.join3('SELECT 1', 'SELECT 2', 'SELECT 3')`,
      `df.loop('SELECT 1' ~> df.break('{"done":true}'), NULL)`,
      `df.wait_for_signal('go', timeout_seconds => 30)`,
      `df.retry('SELECT 1', 3, 0.5, 10) ~> df.timeout('SELECT 2', 1.5)`,
      `DF.SQL('select ''quoted'' AS q')`,
      `df.wait_for_schedule('*/5 * * * *')`,
      `df.sql ( 'x' )`,
      `'{"node_type":"SQL","query":"SELECT 1"}'::jsonb::text`,
      `'a\\b' ~> 'SELECT 1'`,
    ];
    for (const expr of cases) {
      const [direct] = await t.query<{ v: string }>(`SELECT (${expr})::text AS v`);
      expect(await evalDsl(expr), expr).toBe(direct!.v);
    }
  });

  it('keeps string literals exactly, multi-line text included', async () => {
    expect(await evalDsl(`df.sql('SELECT 1\n  -- not a comment here; /* nor here */ $$')`)).toContain('-- not a comment here; /* nor here */ $$');
  });
});

describe('rejected before anything runs', () => {
  const attacks: [string, RegExp][] = [
    [`'a' ~> 'b'; DROP TABLE victim`, /unexpected ";"/],
    [`'a' ~> 'b'; DROP TABLE victim; --`, /unexpected ";"/],
    [`(SELECT 1)`, /unexpected "SELECT"/],
    [`'x' ~> (SELECT string_agg(x::text, ',') FROM victim)`, /unexpected "SELECT"/],
    [`pg_sleep(10)`, /unexpected "pg_sleep"/],
    [`pg_catalog.pg_sleep(10)`, /function "pg_catalog.pg_sleep"/],
    [`df.start('SELECT 1')`, /function "df.start"/],
    [`df.cancel('abcdef01')`, /function "df.cancel"/],
    [`'a' -- comment`, /unexpected "-"/],
    [`'a' ~> 'b' --`, /unexpected "-"/],
    [`'a' /* c */ ~> 'b'`, /unexpected "\/"/],
    [`$$SELECT 1$$`, /unexpected "\$"/],
    [`$q$x$q$ ~> 'b'`, /unexpected "\$"/],
    [`E'\\x27' ~> 'b'`, /unexpected "E"/],
    [`U&'\\0041'`, /unexpected "U"/],
    [`"df"."sql"('x')`, /unexpected """/],
    [`'a' || 'b'`, /unexpected "\|"|./],
    [`df.sql`, /unexpected "df.sql"/],
    [`'x'::regclass`, /a cast to "regclass"/],
    [`'unterminated`, /unexpected "'"/],
    [`'a'), ('b'`, /unbalanced/],
    [`'a', 'b'`, /comma outside/],
    [`victim`, /unexpected "victim"/],
    [`current_user`, /unexpected "current_user"/],
    [`1e5`, /unexpected "e5"/],
    [``, /empty/],
    [`   `, /empty/],
    [`'a' ; `, /unexpected ";"/],
    [`x => 'a'`, /unexpected "x"/],
    [`'a' \\ 'b'`, /unexpected "\\"/],
  ];
  it.each(attacks)('%s', async (expr, why) => {
    const r = await rejection(expr);
    if (expr === `'a' || 'b'`) {
      // `|` twice is two accepted tokens: PostgreSQL itself rejects `'a' | | 'b'` (nothing runs either way).
      expect(r.code).toMatch(/^(PF002|42.*)$/);
    } else {
      expect(r.code).toBe('PF002');
      expect(r.message).toMatch(why);
    }
  });

  it('left the table alone and started nothing', async () => {
    expect(await t.query('SELECT x FROM victim')).toEqual([{ x: 1 }]);
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([{ n: 0 }]);
  });

  it('reports the character position of the first bad token', async () => {
    expect((await rejection(`'SELECT 1' ~> pg_sleep(1)`)).message).toMatch(/at character 15: unexpected "pg_sleep"/);
  });

  it('limits nesting depth', async () => {
    const deep = '('.repeat(201) + `'x'` + ')'.repeat(201);
    expect((await rejection(deep)).message).toMatch(/nested deeper than 200/);
  });
});
