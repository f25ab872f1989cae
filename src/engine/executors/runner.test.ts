import { describe, expect, it } from 'vitest';
import { isSingleStatement, parseRecord } from './runner.ts';

describe('parseRecord (record_out text → column texts)', () => {
  it.each<[string, number, (string | null)[]]>([
    ['(1,x)', 2, ['1', 'x']],
    ['(,)', 2, [null, null]],
    ['()', 1, [null]],
    ['()', 0, []],
    ['("",a)', 2, ['', 'a']],
    ['("a ""q"" b","x,y","(p)")', 3, ['a "q" b', 'x,y', '(p)']],
    ['("back\\\\slash","new\nline")', 2, ['back\\slash', 'new\nline']],
    ['(t,f,"2024-06-15 12:30:00+00")', 3, ['t', 'f', '2024-06-15 12:30:00+00']],
    ['("{""a"": 1}",)', 2, ['{"a": 1}', null]],
    ['(ünï,☃)', 2, ['ünï', '☃']],
  ])('%s', (text, n, cols) => {
    expect(parseRecord(text, n)).toEqual(cols);
  });

  it('refuses text that is not a record of the expected width', () => {
    expect(() => parseRecord('1,2', 2)).toThrow(/not a record/);
    expect(() => parseRecord('(1,2)', 3)).toThrow(/2 columns, expected 3/);
  });
});

describe('isSingleStatement', () => {
  it.each([
    'SELECT 1',
    'SELECT 1;',
    'SELECT 1;;  ',
    'SELECT 1; -- done',
    'SELECT 1; /* a /* nested */ comment */',
    "SELECT 'a;b'",
    "SELECT 'it''s; fine'",
    "SELECT E'\\'; still a string'",
    'SELECT $$;$$',
    'SELECT $tag$ ; $$ ; $tag$',
    'SELECT "a;b" FROM t',
    'SELECT 1 -- ; not a statement\n',
    'SELECT a$b FROM t',
    'DO $$ BEGIN PERFORM 1; PERFORM 2; END $$',
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$',
    '',
  ])('single: %j', (sql) => {
    expect(isSingleStatement(sql)).toBe(true);
  });

  it.each([
    'SELECT 1; SELECT 2',
    'SELECT 1;SELECT 2;',
    "SELECT 'x'; DROP TABLE t",
    'SELECT $$a$$; SELECT 2',
    "SELECT E'\\\\'; SELECT 2",
    'SELECT 1 /* c */; /* c */ SELECT 2',
    'SELECT "x"""; SELECT 2',
  ])('several: %j', (sql) => {
    expect(isSingleStatement(sql)).toBe(false);
  });
});
