/**
 * SPEC §5.1 dry run over DSL expressions (needs 0002_dsl + 0003_operators): the expression text is
 * evaluated as the caller, with the operators resolved from the operator schema.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { FIXTURES } from '../../helpers/fixtures.ts';

const t = useTestDb();
let c: pg.PoolClient;

beforeAll(async () => {
  c = await t.owner.connect();
  await c.query(`SET pg_durable.http_policy = 'all'`);
  const [{ ready }] = (await c.query(`SELECT to_regprocedure('df.seq(text,text)') IS NOT NULL AS ready`)).rows;
  if (!ready) throw new Error('the SQL DSL (migrations/0002_dsl.sql) is not installed yet');
});
afterAll(() => c?.release());

const explain = async (expr: string) => (await c.query('SELECT df.explain($1) AS x', [expr])).rows[0].x as string;
const pad = (lines: string[]) => {
  const width = Math.max(...lines.map((l) => [...l].length)) + 4;
  return lines.map((l) => l + ' '.repeat(width - [...l].length)).join('\n');
};

const SPEC_EXAMPLE =
  'SQL: SELECT 1                    \n' +
  '→ JOIN (2)                       \n' +
  '    ║ branch 1:                  \n' +
  "      ├─SQL: SELECT a |=> 'x'    \n" +
  '    ║ branch 2:                  \n' +
  '      └─SQL: SELECT b            \n' +
  '      → SLEEP 2s                 ';

describe('DSL expressions', () => {
  it('the SPEC §5.1 example, as expression text, reproduces byte for byte', async () => {
    expect(await explain(`'SELECT 1' ~> df.join('SELECT a' |=> 'x', 'SELECT b' ~> df.sleep(2))`)).toBe(SPEC_EXAMPLE);
  });

  it('the same example evaluated first (an envelope) renders the same', async () => {
    const [{ x }] = (await c.query(`SELECT df.explain('SELECT 1' ~> df.join('SELECT a' |=> 'x', 'SELECT b' ~> df.sleep(2))) AS x`)).rows;
    expect(x).toBe(SPEC_EXAMPLE);
  });

  it('operators: loop prefix, if/else with a sequence as condition, race, join3, named signal', async () => {
    expect(await explain(`@> ('SELECT 1' ~> df.break('done'))`)).toBe(
      pad(['LOOP (infinite)', '    ↻ body:', '      └─SQL: SELECT 1', "      → BREAK 'done'"]),
    );
    expect(await explain(`'SELECT 1' ~> 'SELECT true' ?> 'SELECT 2' !> 'SELECT 3'`)).toBe(
      pad(['IF', '    ? condition:', '      └─SQL: SELECT 1', '      → SQL: SELECT true', '    ✓ then:', '      └─SQL: SELECT 2', '    ✗ else:', '      └─SQL: SELECT 3']),
    );
    expect(await explain(`'SELECT 1' | df.sleep(5)`)).toBe(pad(['RACE', '    ║ branch 1:', '      ├─SQL: SELECT 1', '    ║ branch 2:', '      └─SLEEP 5s']));
    expect((await explain(`df.join3('a', 'b', 'c')`)).split('\n')[0].trimEnd()).toBe('JOIN (3)');
    expect(await explain(`df.wait_for_signal('approve', 30) |=> 'sig'`)).toBe(pad(["SIGNAL 'approve' (30s) |=> 'sig'"]));
  });

  it('a lone partial if is not a node', async () => {
    expect(await explain(`'SELECT true' ?> 'SELECT 1'`)).toBe('Failed to parse Durofut JSON: missing field `node_type`');
  });

  it.each(Object.entries(FIXTURES))('fixture %s explains, and df.start writes one row per explained node', async (_name, expr) => {
    const [{ out }] = (await c.query(`SELECT df.explain(${expr}) AS out`)).rows;
    expect(out).not.toMatch(/^(Invalid durable function graph|Failed to|Expression returned NULL|Cannot explain)/);
    const [{ n }] = (await c.query(`SELECT count(*)::int AS n FROM df._flatten(df._ensure(${expr}, true))`)).rows;
    await c.query('BEGIN');
    try {
      const [{ id }] = (await c.query(`SELECT df.start(${expr}) AS id`)).rows;
      const [{ rows }] = (await c.query(`SELECT count(*)::int AS rows FROM df.nodes WHERE instance_id = $1`, [id])).rows;
      expect(rows).toBe(n);
    } finally {
      await c.query('ROLLBACK');
    }
  });
});
