// SPEC §2.1: the seven operators, how they resolve, their precedence and associativity.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const one = async (sql: string) => Object.values((await t.query(sql))[0])[0] as string;
/** Evaluates both SQL expressions and checks they give the same text. */
const same = async (written: string, meaning: string) => {
  const [r] = await t.query(`SELECT ${written} AS a, ${meaning} AS b`);
  expect(r.a).toBe(r.b);
  return r.a as string;
};
const S = (q: string) => ({ node_type: 'SQL', query: q });

describe('each operator maps to its function', () => {
  it('~> is df.seq', async () => {
    expect(await same(`'SELECT 1' ~> 'SELECT 2'`, `df.seq('SELECT 1', 'SELECT 2')`)).toBe(
      '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"}}',
    );
  });

  it('|=> is df.as', async () => {
    expect(await same(`'SELECT 1' |=> 'a'`, `df.as('SELECT 1', 'a')`)).toBe('{"node_type":"SQL","query":"SELECT 1","result_name":"a"}');
  });

  it('& is df.join and | is df.race, also for two bare literals', async () => {
    expect(JSON.parse(await same(`'a' & 'b'`, `df.join('a', 'b')`)).node_type).toBe('JOIN');
    expect(JSON.parse(await same(`'a' | 'b'`, `df.race('a', 'b')`)).node_type).toBe('RACE');
    const [r] = await t.query(`SELECT pg_typeof('a' & 'b')::text AS j, pg_typeof('a' | 'b')::text AS r`);
    expect(r).toEqual({ j: 'text', r: 'text' });
  });

  it('integer and bit versions of & and | are untouched', async () => {
    const [r] = await t.query(`SELECT 6 & 3 AS a, 6 | 3 AS o, (B'110' & B'011')::text AS b`);
    expect(r).toEqual({ a: 2, o: 7, b: '010' });
  });

  it('?> builds a partial if (not a node), !> completes it into df.if', async () => {
    expect(await one(`SELECT 'c' ?> 't'`)).toBe('{"condition": "c", "_partial_if": true, "then_branch": "t"}');
    expect(await same(`'c' ?> 't' !> 'e'`, `df.if('c', 't', 'e')`)).toBe(
      '{"node_type":"IF","left_node":{"node_type":"SQL","query":"t"},"right_node":{"node_type":"SQL","query":"e"},"condition_node":{"node_type":"SQL","query":"c"}}',
    );
  });

  it('?> keeps envelope operands as text and !> ensures them', async () => {
    const written = `df.sql('c') ?> (df.sleep(1) ~> 't') !> df.break('x')`;
    await same(written, `df.if(df.sql('c'), df.sleep(1) ~> 't', df.break('x'))`);
  });

  it('@> is df.loop without a condition', async () => {
    expect(await same(`@> 'a'`, `df.loop('a')`)).toBe('{"node_type":"LOOP","left_node":{"node_type":"SQL","query":"a"}}');
  });

  it('the operators live in the operator schema (public) and resolve from the default search_path', async () => {
    const rows = await t.query(`
      SELECT o.oprname AS name, n.nspname AS schema, o.oprkind AS kind, o.oprcode::text AS fn
        FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
       WHERE o.oprcode::text LIKE 'df.%' ORDER BY 1`);
    expect(rows).toEqual([
      { name: '!>', schema: 'public', kind: 'b', fn: 'df.if_else_op' },
      { name: '&', schema: 'public', kind: 'b', fn: 'df."join"' },
      { name: '?>', schema: 'public', kind: 'b', fn: 'df.if_then_op' },
      { name: '@>', schema: 'public', kind: 'l', fn: 'df.loop_prefix_op' },
      { name: '|', schema: 'public', kind: 'b', fn: 'df.race' },
      { name: '|=>', schema: 'public', kind: 'b', fn: 'df.as_op' },
      { name: '~>', schema: 'public', kind: 'b', fn: 'df.seq' },
    ]);
  });
});

describe('precedence and associativity (§2.1 table)', () => {
  it("'a' ~> 'b' ~> 'c' is left-associative", async () => {
    await same(`'a' ~> 'b' ~> 'c'`, `df.seq(df.seq('a', 'b'), 'c')`);
  });

  it("'a' ~> 'b' & 'c' joins the sequence with c", async () => {
    const e = JSON.parse(await same(`'a' ~> 'b' & 'c'`, `df.join(df.seq('a', 'b'), 'c')`));
    expect(e).toEqual({ node_type: 'JOIN', left_node: { node_type: 'THEN', left_node: S('a'), right_node: S('b') }, right_node: S('c') });
  });

  it("'a' & 'b' ~> 'c' sequences the join before c", async () => {
    await same(`'a' & 'b' ~> 'c'`, `df.seq(df.join('a', 'b'), 'c')`);
  });

  it("'a' | 'b' & 'c' is (a | b) & c", async () => {
    await same(`'a' | 'b' & 'c'`, `df.join(df.race('a', 'b'), 'c')`);
  });

  it("'a' ~> 'b' |=> 'x' ~> 'c' names the THEN (test 07)", async () => {
    const e = JSON.parse(await same(`'a' ~> 'b' |=> 'x' ~> 'c'`, `df.seq(df.as(df.seq('a', 'b'), 'x'), 'c')`));
    expect(e.left_node.node_type).toBe('THEN');
    expect(e.left_node.result_name).toBe('x');
  });

  it("'a' & 'b' |=> 'x' names the JOIN, not b", async () => {
    const e = JSON.parse(await same(`'a' & 'b' |=> 'x'`, `df.as(df.join('a', 'b'), 'x')`));
    expect(e).toEqual({ node_type: 'JOIN', left_node: S('a'), right_node: S('b'), result_name: 'x' });
  });

  it("'x' ~> 'c' ?> 't' !> 'e' uses the whole sequence as the condition", async () => {
    const e = JSON.parse(await same(`'x' ~> 'c' ?> 't' !> 'e'`, `df.if(df.seq('x', 'c'), 't', 'e')`));
    expect(e.condition_node).toEqual({ node_type: 'THEN', left_node: S('x'), right_node: S('c') });
  });

  it("'c' ?> 't' |=> 'n' !> 'e' is an error", async () => {
    await expect(t.query(`SELECT 'c' ?> 't' |=> 'n' !> 'e'`)).rejects.toMatchObject({
      code: '22023',
      message: 'Invalid if-then-else: left side of !> must be a ?> expression',
    });
  });

  it('!> without ?> is an error, whatever the left side is', async () => {
    for (const left of [`'SELECT 1'`, `df.sql('x')`, `'[1]'`, `'{"condition":"c","then_branch":"t"}'`]) {
      await expect(t.query(`SELECT ${left} !> 'e'`)).rejects.toMatchObject({
        code: '22023',
        message: 'Invalid if-then-else: left side of !> must be a ?> expression',
      });
    }
  });

  it("parenthesised: 'c' ?> ('t' |=> 'n') !> 'e' names the then branch", async () => {
    const e = JSON.parse(await one(`SELECT 'c' ?> ('t' |=> 'n') !> 'e'`));
    expect(e.left_node).toEqual({ node_type: 'SQL', query: 't', result_name: 'n' });
  });

  it("@> 'a' ~> 'b' binds the prefix to the next operand only", async () => {
    await same(`@> 'a' ~> 'b'`, `df.seq(df.loop('a'), 'b')`);
    await same(`@> ('a' ~> 'b')`, `df.loop(df.seq('a', 'b'))`);
  });

  it("'a' ~> 'b' || 'c' concatenates text onto the envelope", async () => {
    expect(await one(`SELECT 'a' ~> 'b' || 'c'`)).toBe(`${await one(`SELECT df.seq('a', 'b')`)}c`);
  });

  it("'c' ?> 't' alone is partial-if JSON that ensure wraps as a SQL node", async () => {
    const partial = await one(`SELECT 'c' ?> 't'`);
    expect(JSON.parse(await one(`SELECT df._ensure('c' ?> 't')`))).toEqual({ node_type: 'SQL', query: partial });
  });

  it(':: binds tighter, = binds looser', async () => {
    await same(`'a' ~> 'b'::text`, `df.seq('a', 'b')`);
    const [r] = await t.query(`SELECT 'a' ~> 'b' = df.seq('a', 'b') AS eq`);
    expect(r.eq).toBe(true);
  });
});
