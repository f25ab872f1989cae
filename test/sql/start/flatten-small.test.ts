/**
 * 0021: df._flatten returns a graph of at most 64 nodes with nothing to merge row by row, and draws its
 * ids one by one. The rows must be those of the set-based path (0004), which this file installs beside
 * it as public.flatten_0004 from the migration's own text. Ids are random, so rows are compared with
 * every id replaced by the pre-order position of the node it names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

beforeAll(async () => {
  const src = readFileSync(join(import.meta.dirname, '../../../migrations/0004_start.sql'), 'utf8');
  const start = src.indexOf('CREATE FUNCTION df._flatten(p_envelope text)');
  const end = src.indexOf('$$;', start) + 3;
  await t.query(src.slice(start, end).replace('CREATE FUNCTION df._flatten(', 'CREATE FUNCTION public.flatten_0004('));
});

/** Both paths' rows for the graph `expr` (a SQL expression), every id replaced by `#<pre-order position>`. */
async function both(expr: string) {
  const run = async (fn: string) => {
    const rows = await t.query(`SELECT f.* FROM ${fn}(df._ensure((SELECT ${expr}), true)) f ORDER BY f.ord`);
    const ord = new Map<string, string>(rows.map((r) => [r.id, `#${r.ord}`]));
    // Ids also stand inside a merged query (condition_node, extra_nodes).
    const swap = (v: unknown): unknown =>
      typeof v === 'string' ? v.replace(/[0-9a-f]{8}/g, (id) => ord.get(id) ?? id) : Array.isArray(v) ? v.map(swap) : v;
    return { distinct: ord.size, rows: rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, swap(v)]))) };
  };
  return { now: await run('df._flatten'), before: await run('public.flatten_0004') };
}

const chain = (n: number) => Array.from({ length: n }, (_, i) => `'SELECT ${i}'`).join(' ~> ');

describe('df._flatten on small graphs (0021)', () => {
  it.each([
    ['one SQL step', `'SELECT 1'`],
    ['a named result and a reference', `'SELECT 1 AS x' |=> 'a' ~> 'SELECT $a.x'`],
    ['a join of two', `'SELECT 1' & 'SELECT 2'`],
    ['a join of three (extras merged into the query)', `df.join3('SELECT 1', 'SELECT 2', 'SELECT 3')`],
    ['a race with a sleep', `df.race('SELECT 1', df.sleep(5))`],
    ['if/else (a condition merged into the query)', `'SELECT true' ?> 'SELECT 1' !> 'SELECT 2'`],
    ['if_rows', `'SELECT 1' |=> 'r' ~> df.if_rows('r', 'SELECT 2', 'SELECT 3')`],
    ['a loop with a break', `df.loop('SELECT 1' ~> df.break('{"done":true}'))`],
    ['a signal wait with a time-out', `df.wait_for_signal('go', 30) ~> 'SELECT 1'`],
    ['per-node options (retry, timeout)', `df.retry(df.timeout('SELECT 1', 5), 3) ~> 'SELECT 2'`],
    ['32 steps in a chain (63 nodes, the fast path)', chain(32)],
    ['33 steps in a chain (65 nodes, the set-based path)', chain(33)],
  ])('%s: the same rows as the set-based path', async (_name, expr) => {
    const { now, before } = await both(expr);
    expect(now.rows.length).toBeGreaterThan(0);
    expect(now.rows).toEqual(before.rows);
    expect(now.distinct).toBe(now.rows.length);
  });

  it('bad graphs fail the same way on both paths', async () => {
    for (const bad of [
      `'{"node_type":"SQL"}'`,
      `'{"node_type":"THEN","left_node":{"node_type":"SQL","query":"a"}}'`,
      `'{"node_type":"SQL","query":"a","result_name":"1x"}'`,
      `'{"node_type":"NOPE","query":"a"}'`,
    ]) {
      const errOf = (fn: string) =>
        t.query(`SELECT * FROM ${fn}(${bad})`).then(
          () => null,
          (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }),
        );
      const now = await errOf('df._flatten');
      expect(now).not.toBeNull();
      expect(now).toEqual(await errOf('public.flatten_0004'));
    }
  });
});
