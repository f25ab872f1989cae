// SPEC §2: signatures, defaults, STRICT-ness and argument validation of the DSL functions.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const one = async (sql: string, params?: unknown[]) => Object.values((await t.query(sql, params))[0])[0];

describe('df.as', () => {
  it('rejects an empty name', async () => {
    await expect(t.query(`SELECT df.as('SELECT 1', '')`)).rejects.toMatchObject({
      code: '22023',
      message: 'df.as: result name cannot be empty',
    });
  });

  it.each(['1abc', 'a-b', 'a b', 'é', 'a.b', 'x\n', '$x'])('rejects %j', async (name) => {
    await expect(t.query(`SELECT df.as('SELECT 1', $1)`, [name])).rejects.toMatchObject({
      code: '22023',
      message: `df.as: result name '${name}' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*`,
    });
  });

  it.each(['a', '_', 'A_1', '_x9', 'Zz'])('accepts %j', async (name) => {
    expect(JSON.parse((await one(`SELECT df.as('SELECT 1', $1)`, [name])) as string).result_name).toBe(name);
  });

  it('checks the name before the node (a malformed node with a bad name reports the name)', async () => {
    await expect(t.query(`SELECT df.as('{"node_type":"THEN","left_node":1}', '9')`)).rejects.toMatchObject({
      code: '22023',
      message: "df.as: result name '9' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*",
    });
  });

  it('the |=> operator applies the same validation', async () => {
    await expect(t.query(`SELECT 'SELECT 1' |=> 'bad name'`)).rejects.toMatchObject({
      code: '22023',
      message: "df.as: result name 'bad name' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*",
    });
  });
});

describe('df.sleep', () => {
  it('rejects negative durations', async () => {
    await expect(t.query(`SELECT df.sleep(-1)`)).rejects.toMatchObject({
      code: '22023',
      message: 'Sleep duration must be non-negative',
    });
  });
});

describe('df.wait_for_signal', () => {
  it('rejects an empty name', async () => {
    await expect(t.query(`SELECT df.wait_for_signal('')`)).rejects.toMatchObject({
      code: '22023',
      message: 'Signal name cannot be empty',
    });
  });

  it.each([0, -5])('rejects timeout %d', async (n) => {
    await expect(t.query(`SELECT df.wait_for_signal('s', $1)`, [n])).rejects.toMatchObject({
      code: '22023',
      message: 'Timeout must be positive',
    });
  });

  it('rejects a NULL name (the function is not STRICT)', async () => {
    await expect(t.query(`SELECT df.wait_for_signal(NULL, 5)`)).rejects.toMatchObject({
      code: '22004',
      message: 'df.wait_for_signal(): name cannot be NULL',
    });
  });

  it('a blank but non-empty name is allowed', async () => {
    expect(JSON.parse(JSON.parse((await one(`SELECT df.wait_for_signal(' ')`)) as string).query)).toEqual({
      signal_name: ' ',
      timeout_seconds: null,
    });
  });
});

describe('df.loop and df.break', () => {
  it('df.loop (and so @>) rejects a NULL body', async () => {
    await expect(t.query(`SELECT df.loop(NULL)`)).rejects.toMatchObject({ code: '22004', message: 'df.loop(): body cannot be NULL' });
    await expect(t.query(`SELECT @> NULL::text`)).rejects.toMatchObject({ code: '22004', message: 'df.loop(): body cannot be NULL' });
  });
});

describe('STRICT functions return NULL on a NULL argument', () => {
  it.each([
    `df.sql(NULL)`,
    `df.seq('a', NULL)`,
    `df.seq(NULL, 'b')`,
    `df.as('a', NULL)`,
    `df.as(NULL, 'a')`,
    `df.join(NULL, 'b')`,
    `df.join3('a', 'b', NULL)`,
    `df.race('a', NULL)`,
    `df.if(NULL, 't', 'e')`,
    `df.if('c', 't', NULL)`,
    `df.if_rows(NULL, 't', 'e')`,
    `df.if_rows('r', NULL, 'e')`,
    `df.sleep(NULL)`,
    `df.wait_for_schedule(NULL)`,
    `NULL::text ~> 'b'`,
    `'a' & NULL::text`,
    `'a' | NULL::text`,
    `'a' |=> NULL::text`,
  ])('%s', async (expr) => {
    expect(await one(`SELECT ${expr}`)).toBeNull();
  });

  it('a STRICT composer returns NULL without ensuring a malformed sibling', async () => {
    expect(await one(`SELECT df.seq('{"node_type":"THEN","left_node":1}', NULL)`)).toBeNull();
  });
});

describe('named notation with pg_durable parameter names', () => {
  it.each([
    [`df.sql(query => 'q')`, 'SQL'],
    [`df.seq(a => 'x', b => 'y')`, 'THEN'],
    [`df.as(fut => 'x', name => 'n')`, 'SQL'],
    [`df.join(a => 'x', b => 'y')`, 'JOIN'],
    [`df.join3(a => 'x', b => 'y', c => 'z')`, 'JOIN'],
    [`df.race(a => 'x', b => 'y')`, 'RACE'],
    [`df.if(condition => 'c', then_branch => 't', else_branch => 'e')`, 'IF'],
    [`df.if_rows(result_name => 'r', then_branch => 't', else_branch => 'e')`, 'IF'],
    [`df.loop(body => 'b', condition => 'c')`, 'LOOP'],
    [`df.loop(body => 'b')`, 'LOOP'],
    [`df.break(value => 'v')`, 'BREAK'],
    [`df.sleep(seconds => 3)`, 'SLEEP'],
    [`df.wait_for_schedule(cron_expr => '* * * * *')`, 'WAIT_SCHEDULE'],
    [`df.wait_for_signal(name => 's', timeout_seconds => 2)`, 'SIGNAL'],
    [`df.as_op(fut => 'x', name => 'n')`, 'SQL'],
    [`df.if_else_op(partial_if => df.if_then_op(condition => 'c', then_branch => 't'), else_branch => 'e')`, 'IF'],
    [`df.loop_prefix_op(body => 'b')`, 'LOOP'],
  ])('%s', async (expr, type) => {
    expect(JSON.parse((await one(`SELECT ${expr}`)) as string).node_type).toBe(type);
  });
});

describe('catalog shape of the DSL (§2, §2.1)', () => {
  it('has exactly these signatures, STRICT-ness and volatility', async () => {
    const rows = await t.query<{ sig: string; strict: boolean; vol: string; lang: string; defaults: string | null }>(`
      SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ')' AS sig, p.proisstrict AS strict,
             p.provolatile::text AS vol, l.lanname AS lang
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
       WHERE n.nspname = 'df' AND p.proname = ANY ($1) ORDER BY 1`, [[
      'sql', 'seq', 'as', 'join', 'join3', 'race', 'if', 'if_rows', 'loop', 'break', 'sleep', 'wait_for_schedule',
      'wait_for_signal', 'http', 'http_multipart', 'as_op', 'if_then_op', 'if_else_op', 'loop_prefix_op']]);
    expect(rows.map((r) => `${r.sig} ${r.strict ? 'STRICT' : ''} ${r.vol}`.replace('  ', ' '))).toEqual([
      'as(fut text, name text) STRICT v',
      'as_op(fut text, name text) i',
      'break(value text DEFAULT NULL::text) v',
      'http(url text, method text DEFAULT \'POST\'::text, body text DEFAULT NULL::text, headers jsonb DEFAULT NULL::jsonb, timeout_seconds integer DEFAULT 30) v',
      'http_multipart(url text, method text DEFAULT \'POST\'::text, parts jsonb DEFAULT NULL::jsonb, headers jsonb DEFAULT NULL::jsonb, timeout_seconds integer DEFAULT 30) v',
      'if(condition text, then_branch text, else_branch text) STRICT v',
      'if_else_op(partial_if text, else_branch text) i',
      'if_rows(result_name text, then_branch text, else_branch text) STRICT v',
      'if_then_op(condition text, then_branch text) i',
      'join(a text, b text) STRICT v',
      'join3(a text, b text, c text) STRICT v',
      'loop(body text, condition text DEFAULT NULL::text) v',
      'loop_prefix_op(body text) i',
      'race(a text, b text) STRICT v',
      'seq(a text, b text) STRICT v',
      'sleep(seconds bigint) STRICT v',
      'sql(query text) STRICT v',
      'wait_for_schedule(cron_expr text) STRICT v',
      'wait_for_signal(name text, timeout_seconds integer DEFAULT NULL::integer) v',
    ]);
    expect(rows.every((r) => r.lang !== 'c')).toBe(true);
  });

  it('there is no df.then and no joinN beyond join3', async () => {
    const [r] = await t.query(`SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                 WHERE n.nspname = 'df' AND (p.proname = 'then' OR p.proname ~ '^join[0-9]+$' AND p.proname <> 'join3')`);
    expect(r.n).toBe(0);
  });

  it('an ordinary role may execute the DSL but not df.http / df.http_multipart', async () => {
    const role = t.role('dsl_user');
    await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    try {
      const [r] = await t.query(`SELECT
          has_function_privilege($1, 'df.sql(text)', 'EXECUTE') AS sql,
          has_function_privilege($1, 'df.seq(text,text)', 'EXECUTE') AS seq,
          has_function_privilege($1, 'df.if_else_op(text,text)', 'EXECUTE') AS ifelse,
          has_function_privilege($1, 'df.http(text,text,text,jsonb,integer)', 'EXECUTE') AS http,
          has_function_privilege($1, 'df.http_multipart(text,text,jsonb,jsonb,integer)', 'EXECUTE') AS multipart,
          has_function_privilege($1, 'df._ensure(text,boolean)', 'EXECUTE') AS ensure`, [role]);
      expect(r).toEqual({ sql: true, seq: true, ifelse: true, http: false, multipart: false, ensure: false });
    } finally {
      await t.superuser.query(`DROP ROLE ${role}`);
    }
  });
});
