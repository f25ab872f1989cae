/**
 * src/graph's SQL-facing pure modules checked against a real server: values substituted in SQL mode
 * come back unchanged (no literal break-out), and buildSqlResult reads what node-postgres delivers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDb } from '../helpers/db.ts';
import { substitute, type SubstitutionContext } from '../../src/graph/substitute.ts';
import { buildSqlResult, type SqlResultOutcome } from '../../src/graph/sql-result.ts';

const t = useTestDb();
let c: pg.PoolClient;

beforeAll(async () => {
  c = await t.owner.connect();
  await c.query(`SET DateStyle = ISO; SET TimeZone = 'Asia/Kolkata'`); // any zone: results are UTC
});
afterAll(() => c?.release());

/** Runs one statement the way the engine should: array rows, every value as the server's text. */
async function runStep(sql: string): Promise<SqlResultOutcome> {
  const r = await c.query({ text: sql, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  return buildSqlResult(r.fields, r.rows as (string | null)[][]);
}

const hostile = [
  "'; DROP TABLE users; --",
  "\\'; SELECT 1; --",
  'back\\slash\\',
  '$$; DROP TABLE x; $$',
  '$tag$ evil $tag$',
  "E'\\x27'",
  'line\nbreak\r\n\ttab',
  'unicode ✓ 🚀 \u2028',
  '{x} $h $1 ? ;',
];

describe('SQL-mode substitution against PostgreSQL', () => {
  it.each(hostile)('%j round-trips as one literal', async (h) => {
    const text = JSON.stringify({ rows: [{ v: h, o: { h } }], row_count: 1 });
    const ctx: SubstitutionContext = { instanceId: 'a1b2c3d4', label: null, vars: {}, results: { h: { text } } };
    const sql = substitute('SELECT $h AS a, $h.v AS b, $h.o::jsonb AS c, (SELECT v FROM $h.*) AS d', ctx, 'sql');
    expect(sql.ok).toBe(true);
    const { rows } = await c.query(sql.ok ? sql.text : '');
    expect(rows).toEqual([{ a: h, b: h, c: { h }, d: h }]);
  });

  it('row-set expansion runs, numeric strings cast back', async () => {
    const text = '{"rows":[{"id":1,"amount":"9876543.12345678"},{"id":2,"amount":"0.10"}],"row_count":2}';
    const ctx: SubstitutionContext = { instanceId: 'a1b2c3d4', label: null, vars: {}, results: { b: { text } } };
    const sql = substitute('SELECT sum(amount::numeric)::text AS s, count(*)::int AS n FROM $b.*', ctx, 'sql');
    const { rows } = await c.query(sql.ok ? sql.text : '');
    expect(rows).toEqual([{ s: '9876543.22345678', n: 2 }]);
    const empty = substitute('SELECT count(*)::int AS n FROM $e.*', { ...ctx, results: { e: { text: '{"rows":[],"row_count":0}' } } }, 'sql');
    expect((await c.query(empty.ok ? empty.text : '')).rows).toEqual([{ n: 0 }]);
  });
});

describe('buildSqlResult on real rows', () => {
  it('maps the supported types (SPEC §3.1)', async () => {
    const r = await runStep(`SELECT true AS b, 2::int2 AS i2, 42 AS i4, 9223372036854775807::int8 AS i8,
      1.5::float4 AS f4, 0.1::float8 AS f8, 'NaN'::float8 AS nan, 'x'::text AS t, 'v'::varchar AS vc, 'ab'::char(4) AS bp,
      current_user::name IS NOT NULL AS has_name, 123456.78900000::numeric AS n, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
      '2024-06-15 12:30:00+00'::timestamptz AS tz, '2024-06-15 12:30:00.5'::timestamp AS ts, '2024-02-29'::date AS d,
      '{"b": 1, "a": [1, 2.50]}'::jsonb AS jb, '{"z": 1, "a": 2}'::json AS j, pg_sleep(0) AS v, NULL::int AS nul`);
    expect(r).toEqual({
      ok: true,
      text:
        '{"rows":[{"b":true,"i2":2,"i4":42,"i8":9223372036854775807,"f4":1.5,"f8":0.1,"nan":null,"t":"x","vc":"v","bp":"ab  ",' +
        '"has_name":true,"n":"123456.78900000","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","tz":"2024-06-15T12:30:00+00:00",' +
        '"ts":"2024-06-15T12:30:00.500","d":"2024-02-29","jb":{"a":[1,2.5],"b":1},"j":{"z":1,"a":2},"v":null,"nul":null}],"row_count":1}',
    });
  });

  it('collapses duplicate names and counts returned rows only', async () => {
    expect(await runStep(`SELECT 1 AS a, 2 AS b, 3 AS a`)).toEqual({ ok: true, text: '{"rows":[{"a":3,"b":2}],"row_count":1}' });
    await c.query('CREATE TEMP TABLE tmp_rt (x int)');
    expect(await runStep(`INSERT INTO tmp_rt VALUES (1), (2)`)).toEqual({ ok: true, text: '{"rows":[],"row_count":0}' });
    expect(await runStep(`SELECT x FROM tmp_rt ORDER BY x`)).toEqual({ ok: true, text: '{"rows":[{"x":1},{"x":2}],"row_count":2}' });
  });

  it('fails unsupported types with the pg_durable message', async () => {
    const r = await runStep(`SELECT '\\x00'::bytea AS blob`);
    expect(r).toEqual({
      ok: false,
      error:
        "Unsupported column type 'BYTEA' for column 'blob'. Supported types: bool, int2, int4, int8, float4, float8, text, varchar, numeric, uuid, timestamptz, timestamp, date, jsonb, json, void.",
    });
    for (const expr of [`ARRAY[1]`, `interval '1 day'`, `'12:00'::time`, `1::oid`, `'a'::"char"`, `'1.2.3.4'::inet`, `ROW(1, 2)`]) {
      const res = await runStep(`SELECT ${expr} AS x`);
      expect(res.ok ? 'ok' : res.error, expr).toContain('Unsupported column type');
    }
  });
});
