/** The extractor behind sql-in-docs.test.ts: what counts as a documented SQL call, and where it is. */
import { describe, expect, it } from 'vitest';
import { blocksOf, statementsOf } from './extract.ts';

describe('blocksOf', () => {
  it('takes ```sql blocks with their first line, and skips norun blocks only with a reason', () => {
    const md = ['# t', '', '```sql', 'SELECT 1;', '```', 'text', '```sql norun needs a second role', 'SELECT 2;', '```', '```', 'SELECT 3;', '```'].join('\n');
    expect(blocksOf('a.md', md)).toEqual([
      { line: 4, sql: 'SELECT 1;' },
      { line: 8, sql: 'SELECT 2;', norun: 'needs a second role' },
    ]);
    expect(() => blocksOf('a.md', '```sql norun\nSELECT 1;\n```')).toThrow(/a.md:1: .*must say why/);
  });

  it('takes psql -c "…" and quoted here-documents from shell blocks, shell escapes undone', () => {
    const md = [
      '```sh',
      'psql "$DATABASE_URL" -Atc "SELECT df.create_api_token(\'ci\')"   # once',
      "psql \"$DATABASE_URL\" <<'SQL'",
      "SET pg_durable.http_policy = 'all';",
      'SELECT 2;',
      'SQL',
      'curl -s http://x -d "SELECT nothing"',
      'psql -c "SELECT \\"Q\\""',
      '```',
    ].join('\n');
    expect(blocksOf('b.md', md)).toEqual([
      { line: 2, sql: "SELECT df.create_api_token('ci')" },
      { line: 4, sql: "SET pg_durable.http_policy = 'all';\nSELECT 2;" },
      { line: 8, sql: 'SELECT "Q"' },
    ]);
  });

  it('reads a .sql file as one block', () => {
    expect(blocksOf('x.sql', 'SELECT 1;')).toEqual([{ line: 1, sql: 'SELECT 1;' }]);
  });
});

describe('statementsOf', () => {
  it('splits on ; outside quotes, dollar quotes and comments, with each statement\'s line and trailing note', () => {
    const sql = [
      "SELECT 'a;b', \"c;d\";   -- 1404acde",
      '-- a comment; not a statement',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;',
      '/* x; y */ SELECT $1',
      '  , 2;',
      '-- trailing comment only',
    ].join('\n');
    expect(statementsOf({ line: 10, sql })).toEqual([
      { line: 10, sql: "SELECT 'a;b', \"c;d\";", note: '1404acde' },
      { line: 12, sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;' },
      { line: 13, sql: '/* x; y */ SELECT $1\n  , 2;' },
    ]);
  });
});
