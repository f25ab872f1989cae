import { describe, expect, it } from 'vitest';
import { BatchSizer, isSimpleStatement } from './batch.ts';

describe('isSimpleStatement', () => {
  it.each([
    'SELECT 1',
    'select 1;',
    '  SELECT 1 ;  -- done\n',
    'INSERT INTO t VALUES (1) RETURNING n',
    'UPDATE t SET x = 1',
    'DELETE FROM t',
    'WITH a AS (SELECT 1) SELECT * FROM a',
    'VALUES (1), (2)',
    "SELECT 'a;b'",
    "SELECT 'it''s; fine'",
    'SELECT "odd;name" FROM t',
    'SELECT $$a;b$$',
    'SELECT $tag$ $$ ; $tag$',
    '/* a; /* nested; */ still; */ SELECT 1',
    '-- leading; comment\nSELECT 1',
    'SELECT a$b FROM t',
    'SELECT 1;;',
    "SELECT e'x'",
  ])('one plain statement: %j', (sql) => {
    expect(isSimpleStatement(sql)).toBe(true);
  });

  it.each([
    'SELECT 1; SELECT 2',
    'SELECT 1; DROP TABLE t',
    "SELECT 'a'; SELECT 'b'",
    '/* unterminated SELECT 1',
    "SELECT E'\\'; DROP TABLE t; --'",
    'SELECT 1 \\; SELECT 2',
    'CREATE TABLE t (x int)',
    'VACUUM t',
    'COPY t TO STDOUT',
    'CALL p()',
    'SET search_path = x',
    '',
    '  -- only a comment',
    ';',
  ])('anything else runs alone: %j', (sql) => {
    expect(isSimpleStatement(sql)).toBe(false);
  });
});

describe('BatchSizer', () => {
  it('starts at one row and doubles while batches run whole, up to its maximum', () => {
    const s = new BatchSizer(16);
    expect(s.size).toBe(1);
    s.single(true);
    expect(s.size).toBe(2);
    for (const want of [4, 8, 16, 16]) {
      s.batch({ claimed: s.size, ran: s.size, cut: false, overBudget: false, failed: false });
      expect(s.size).toBe(want);
    }
  });

  it('goes back to one row at a row that cannot join, a failed batch, or a slow single step', () => {
    const s = new BatchSizer(16);
    s.size = 8;
    s.single(false);
    expect(s.size).toBe(1);
    s.size = 8;
    s.batch({ claimed: 8, ran: 0, cut: false, overBudget: false, failed: true });
    expect(s.size).toBe(1);
    s.size = 8;
    s.batch({ claimed: 8, ran: 1, cut: false, overBudget: true, failed: false });
    expect(s.size).toBe(1);
  });

  it('shrinks to what a cut batch ran, and halves one that ran out of time', () => {
    const s = new BatchSizer(16);
    s.size = 16;
    s.batch({ claimed: 16, ran: 5, cut: true, overBudget: false, failed: false });
    expect(s.size).toBe(5);
    s.size = 16;
    s.batch({ claimed: 16, ran: 10, cut: false, overBudget: true, failed: false });
    expect(s.size).toBe(5);
  });

  it('keeps its size when the queue had fewer rows than it asked for', () => {
    const s = new BatchSizer(16);
    s.size = 8;
    s.batch({ claimed: 3, ran: 3, cut: false, overBudget: false, failed: false });
    expect(s.size).toBe(8);
  });

  it('keeps its size when a claim for more found one row that could join', () => {
    const s = new BatchSizer(16);
    s.size = 8;
    s.single(true);
    expect(s.size).toBe(8);
  });

  it('takes its budget from the engine (batchBudgetMs), 50 ms by default', () => {
    expect(new BatchSizer(16).budgetMs).toBe(50);
    expect(new BatchSizer(16, 5).budgetMs).toBe(5);
  });

  it('never batches with a maximum of one', () => {
    const s = new BatchSizer(1);
    s.single(true);
    expect(s.size).toBe(1);
  });
});
