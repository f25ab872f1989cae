import { describe, expect, it } from 'vitest';
import {
  isWholeValueReference,
  quoteSqlLiteral,
  substitute,
  substituteBraced,
  toNamedResult,
  type NamedResult,
  type SubstitutionContext,
  type SubstitutionMode,
} from './substitute.ts';

const res = (text: string): NamedResult => ({ text });
const rows = (...r: string[]) => res(`{"rows":[${r.join(',')}],"row_count":${r.length}}`);

const results: Record<string, NamedResult> = {
  n: rows('{"answer":42,"name":"Bob"}'),
  s: rows(`{"v":"it's"}`),
  f: rows('{"v":3.14}'),
  b: rows('{"v":true}'),
  o: rows('{"v":{"k":"x\'y","z":[1,2]}}'),
  a: rows('{"v":[1,"two"]}'),
  nul: rows('{"v":null,"w":1}'),
  empty: res('{"rows":[],"row_count":0}'),
  batch: rows('{"id":1,"label":"a","meta":{"x":1},"ok":true}', '{"id":2,"label":"o\'k","meta":null,"ok":false}'),
  big: rows('{"id":9223372036854775807}'),
  num: rows('{"amount":"9876543.12345678"}'),
  order: rows('{"z":"first","1":"second"}'),
  resp: res('{"status":200,"body":"hello","ok":true,"headers":{"content-type":"text/plain"}}'),
  sig: res('{"signal_name":"go","timed_out":false,"data":{"approved":true}}'),
  pair: res('[{"rows":[{"a":1}],"row_count":1},{"rows":[{"b":2}],"row_count":1}]'),
  done: res('"done"'),
  plain: res('not json at all'),
  nocols: rows('{}'),
  scalarrow: res('{"rows":[5],"row_count":1}'),
  x: rows('{"v":"short"}'),
  xy: rows('{"v":"long"}'),
};

const ctx = (over: Partial<SubstitutionContext> = {}): SubstitutionContext => ({
  instanceId: 'a1b2c3d4',
  label: 'nightly',
  vars: { table: 'orders', who: "O'Brien", dollar: '$n' },
  results,
  ...over,
});

const run = (text: string, mode: SubstitutionMode = 'sql', c = ctx()) => {
  const r = substitute(text, c, mode);
  return r.ok ? r.text : `ERROR: ${r.error}`;
};

describe('{name} pass', () => {
  it('replaces system and captured vars', () => {
    expect(run('SELECT * FROM {table} WHERE id = {sys_instance_id} -- {sys_label}')).toBe(
      'SELECT * FROM orders WHERE id = a1b2c3d4 -- nightly',
    );
    expect(run('{sys_label}', 'sql', ctx({ label: null }))).toBe('');
  });

  it('leaves unknown, invalid and nested candidates verbatim', () => {
    expect(run('{nope} {1x} { table } {a-b}')).toBe('{nope} {1x} { table } {a-b}');
    // `{` pairs with the FIRST following `}`: the inner {msg} is never substituted (SPEC quirk).
    expect(substituteBraced('{"text": "{table}"}', ctx())).toBe('{"text": "{table}"}');
    expect(substituteBraced("SELECT '{table}'", ctx())).toBe("SELECT 'orders'");
    expect(substituteBraced('a { b', ctx())).toBe('a { b');
    expect(substituteBraced('}{table}{', ctx())).toBe('}orders{');
  });

  it('inserts values raw, without quoting, and does not rescan them for {…}', () => {
    expect(substituteBraced("'{who}'", ctx())).toBe("'O'Brien'");
    expect(substituteBraced('{x}', ctx({ vars: { x: '{table}' } }))).toBe('{table}');
  });

  it('lets $… see values inserted by {…}', () => {
    expect(run('SELECT {dollar}')).toBe('SELECT 42');
  });
});

describe('$name pass, SQL mode', () => {
  it('formats the first column of the first row per type', () => {
    expect(run('SELECT $n')).toBe('SELECT 42');
    expect(run('SELECT $s')).toBe("SELECT 'it''s'");
    expect(run('SELECT $f, $b')).toBe('SELECT 3.14, true');
    expect(run('SELECT $o')).toBe(`SELECT '{"k":"x''y","z":[1,2]}'`);
    expect(run('SELECT $a')).toBe(`SELECT '[1,"two"]'`);
    expect(run('SELECT $big')).toBe('SELECT 9223372036854775807');
    expect(run('SELECT $num::numeric')).toBe("SELECT '9876543.12345678'::numeric");
    expect(run('SELECT $order')).toBe("SELECT 'first'"); // column order of the text, not JS key order
  });

  it('reads columns with $name.col and $name.col?', () => {
    expect(run('SELECT $n.name, $n.answer')).toBe("SELECT 'Bob', 42");
    expect(run('SELECT $nul.w, $nul.v?')).toBe('SELECT 1, NULL');
    expect(run('SELECT $empty.v?')).toBe('SELECT NULL');
  });

  it('reads top-level fields of results without rows', () => {
    expect(run('SELECT $resp.status, $resp.body, $resp.ok')).toBe("SELECT 200, 'hello', true");
    expect(run('SELECT $resp.headers')).toBe(`SELECT '{"content-type":"text/plain"}'`);
    expect(run('SELECT $sig.data')).toBe(`SELECT '{"approved":true}'`);
  });

  it('substitutes the whole text for bare $name on a result without rows', () => {
    expect(run('SELECT $sig::jsonb')).toBe(`SELECT '{"signal_name":"go","timed_out":false,"data":{"approved":true}}'::jsonb`);
    expect(run('SELECT $pair')).toBe(`SELECT '[{"rows":[{"a":1}],"row_count":1},{"rows":[{"b":2}],"row_count":1}]'`);
    expect(run('SELECT $done')).toBe(`SELECT '"done"'`);
    expect(run('SELECT $plain, $plain?')).toBe("SELECT 'not json at all', 'not json at all'");
  });

  it('handles NULL and empty results', () => {
    expect(run('SELECT $nul?')).toBe('SELECT NULL');
    expect(run('SELECT $empty?')).toBe('SELECT NULL');
  });

  it('expands $name.* into VALUES', () => {
    expect(run('SELECT * FROM $batch.*')).toBe(
      `SELECT * FROM (VALUES (1,'a'::text,'{"x":1}'::text,true), (2,'o''k'::text,NULL,false)) AS "batch"("id", "label", "meta", "ok")`,
    );
    expect(run('SELECT count(*) FROM $empty.*')).toBe('SELECT count(*) FROM (SELECT NULL WHERE false) AS "empty"');
    expect(run('SELECT * FROM $num.*')).toBe(`SELECT * FROM (VALUES ('9876543.12345678'::text)) AS "num"("amount")`);
  });

  it('uses missing columns of later rows as NULL and ignores extra ones', () => {
    const c = ctx({ results: { r: rows('{"a":1,"b":2}', '{"b":3,"c":4}') } });
    expect(run('$r.*', 'sql', c)).toBe('(VALUES (1,2), (NULL,3)) AS "r"("a", "b")');
  });

  it('leaves a missing column in the SQL for PostgreSQL to report', () => {
    expect(run('SELECT $n.missing, $n.missing?')).toBe('SELECT $n.missing, $n.missing?');
  });

  it('leaves unknown names, $1, $$ and longer identifiers untouched', () => {
    expect(run('SELECT $1, $$body$$, $unknown, $ns, $n_x, $$n')).toBe('SELECT $1, $$body$$, $unknown, $ns, $n_x, $42');
    expect(run('no results', 'sql', ctx({ results: {} }))).toBe('no results');
    expect(run('SELECT $', 'sql')).toBe('SELECT $');
  });

  it('prefers the longest name', () => {
    expect(run('SELECT $xy, $x, $xyz')).toBe("SELECT 'long', 'short', $xyz");
  });

  it('falls back to bare $name when the dot is not followed by an identifier', () => {
    expect(run('SELECT $n.')).toBe('SELECT 42.');
    expect(run('SELECT $n.1')).toBe('SELECT 42.1');
    expect(run('SELECT $n.?')).toBe('SELECT 42.?');
  });

  it('does not rescan substituted values', () => {
    const c = ctx({ results: { p: rows('{"v":"$q"}'), q: rows('{"v":1}') } });
    expect(run('SELECT $p, $q', 'sql', c)).toBe("SELECT '$q', 1");
  });
});

describe('$name pass, raw mode', () => {
  it('inserts values unquoted', () => {
    expect(run('https://x.test/u/$n/$s/?b=$b&f=$f', 'raw')).toBe("https://x.test/u/42/it's/?b=true&f=3.14");
    // Quirk kept from pg_durable: `$name?` is the null-safe form, so a query string's `?` is eaten.
    expect(run('https://x.test/$n?b=1', 'raw')).toBe('https://x.test/42b=1');
    expect(run('$o', 'raw')).toBe('{"k":"x\'y","z":[1,2]}');
    expect(run('$resp.body $sig.data $done $plain', 'raw')).toBe('hello {"approved":true} "done" not json at all');
    expect(run('$nul?|$empty?|$nul.v?', 'raw')).toBe('NULL|NULL|NULL');
  });

  it('expands $name.* to the JSON array of rows', () => {
    expect(run('$batch.*', 'raw')).toBe(
      '[{"id":1,"label":"a","meta":{"x":1},"ok":true},{"id":2,"label":"o\'k","meta":null,"ok":false}]',
    );
    expect(run('$empty.*', 'raw')).toBe('[]');
  });

  it('fails on a missing column unless null-safe', () => {
    expect(run('$batch.nope', 'raw')).toBe("ERROR: $batch.nope: result has no field 'nope' (available: id, label, meta, ok)");
    expect(run('$resp.nope', 'raw')).toBe("ERROR: $resp.nope: result has no field 'nope' (available: body, headers, ok, status)");
    expect(run('$batch.nope?', 'raw')).toBe('$batch.nope?');
  });
});

describe('errors (SPEC §4.2 texts)', () => {
  it.each<[string, SubstitutionMode, string]>([
    ['SELECT $empty', 'sql', '$empty has no rows — query returned zero results'],
    ['SELECT $empty.v', 'sql', '$empty has no rows — query returned zero results'],
    ['SELECT $nul', 'raw', '$nul is NULL — first column of first row is NULL'],
    ['SELECT $nul.v', 'sql', '$nul.v is NULL'],
    ['SELECT $scalarrow', 'sql', '$scalarrow: first row is not an object'],
    ['SELECT $scalarrow.v', 'sql', '$scalarrow.v: first row is not an object'],
    ['SELECT $nocols', 'sql', '$nocols: first row has no columns'],
    ['SELECT $done.v', 'sql', '$done.v: result is neither a row set nor a JSON object'],
    ['SELECT $pair.v', 'sql', '$pair.v: result is neither a row set nor a JSON object'],
    ['SELECT $plain.v', 'sql', '$plain.v: result is not valid JSON'],
    ['SELECT * FROM $resp.*', 'sql', '$resp.* — invalid result format'],
    ['SELECT * FROM $scalarrow.*', 'sql', '$scalarrow.* — row is not an object'],
  ])('%s (%s)', (text, mode, error) => {
    expect(run(text, mode)).toBe(`ERROR: ${error}`);
  });

  it('reports invalid JSON for $name.* on a non-JSON result', () => {
    expect(run('$plain.*')).toMatch(/^ERROR: \$plain\.\* — invalid result JSON: expected value at line 1 column 1$/);
  });

  it('caps $name.* at 10000 rows', () => {
    const many = rows(...Array.from({ length: 10_001 }, (_, i) => `{"i":${i}}`));
    expect(run('$many.*', 'raw', ctx({ results: { many } }))).toBe(
      'ERROR: $many.* — result has 10001 rows, exceeding the maximum of 10000 for row-set expansion. Use pagination or intermediate tables for large result sets.',
    );
    const ok = rows(...Array.from({ length: 10_000 }, (_, i) => `{"i":${i}}`));
    expect(run('$ok.*', 'sql', ctx({ results: { ok } })).startsWith('(VALUES (0), (1)')).toBe(true);
  });
});

/**
 * Reads one standard-conforming SQL string literal at the start of `sql` (optionally followed by
 * `::text`) and returns its value and the rest. Proves a formatted value is exactly one literal.
 */
function readLiteral(sql: string): { value: string; rest: string } {
  expect(sql[0]).toBe("'");
  let value = '';
  let i = 1;
  for (;;) {
    const q = sql.indexOf("'", i);
    expect(q).toBeGreaterThan(-1);
    value += sql.slice(i, q);
    if (sql[q + 1] === "'") {
      value += "'";
      i = q + 2;
      continue;
    }
    return { value, rest: sql.slice(q + 1) };
  }
}

describe('hostile values cannot leave the SQL literal', () => {
  const hostile = [
    "'; DROP TABLE users; --",
    "''''",
    "\\'; DROP TABLE users; --",
    'back\\slash\\',
    '$$; DROP TABLE x; $$',
    '$tag$ evil $tag$',
    "E'\\x27'",
    '\' OR 1=1 --',
    'line\nbreak\r\n\ttab',
    'unicode ✓ 🚀 ÿ \u2028 \u00a0',
    '{table} $n $1',
    '/* comment */ "ident" ;',
  ];

  it.each(hostile)('%j', (h) => {
    const json = JSON.stringify({ v: h, w: { h } });
    const c = ctx({ results: { h: rows(json.replace('"w"', '"w"')) } });
    // bare, column and row-set forms
    for (const [tpl, expected] of [
      ['$h', h],
      ['$h.v', h],
      ['$h.w', JSON.stringify({ h })],
    ] as const) {
      const out = run(tpl, 'sql', c);
      const lit = readLiteral(out);
      expect(lit.value).toBe(expected);
      expect(lit.rest).toBe('');
    }
    const set = run('$h.*', 'sql', c);
    const prefix = '(VALUES (';
    expect(set.startsWith(prefix)).toBe(true);
    const first = readLiteral(set.slice(prefix.length));
    expect(first.value).toBe(h);
    expect(first.rest.startsWith('::text,')).toBe(true);
    const second = readLiteral(first.rest.slice('::text,'.length));
    expect(second.value).toBe(JSON.stringify({ h }));
    expect(second.rest).toBe(`::text)) AS "h"("v", "w")`);
  });

  it('quotes identifiers in $name.* aliases', () => {
    const c = ctx({ results: { r: rows('{"we\\"ird":1}') } });
    expect(run('$r.*', 'sql', c)).toBe('(VALUES (1)) AS "r"("we""ird")');
  });

  it('quoteSqlLiteral doubles quotes and nothing else', () => {
    expect(quoteSqlLiteral("a'b\\c")).toBe("'a''b\\c'");
  });
});

describe('isWholeValueReference', () => {
  it.each([
    ['$r', true],
    [' $r? ', true],
    ['$r.col', true],
    ['$r.col?', true],
    ['{v}', true],
    ['{sys_label}', true],
    ['$r.*', false],
    ['$r.', false],
    ['x$r', false],
    ['$r $s', false],
    ['{v}x', false],
    ['{1v}', false],
    ['aGVsbG8=', false],
    ['', false],
  ])('%j → %s', (v, expected) => {
    expect(isWholeValueReference(v)).toBe(expected);
  });
});

describe('toNamedResult', () => {
  it('keeps the text and parses JSON values', () => {
    expect(toNamedResult('{"rows":[],"row_count":0}')).toEqual({ text: '{"rows":[],"row_count":0}', value: { rows: [], row_count: 0 } });
    expect(toNamedResult('oops')).toEqual({ text: 'oops', value: undefined });
  });

  it('accepts plain strings and Maps as results and vars', () => {
    const c = ctx({ results: new Map([['r', '{"rows":[{"a":"x"}],"row_count":1}']]), vars: new Map([['t', 'T']]) });
    expect(run('{t} $r', 'raw', c)).toBe('T x');
  });
});
