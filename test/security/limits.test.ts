/**
 * Size limits (issue 7 item 5, migrations/0014_limits.sql and src/engine/limits.ts). Every breach raises
 * 54000 with a message naming the setting and leaves nothing written; a step whose result is over the
 * worker's cap fails with a message naming PGFLARE_MAX_RESULT_BYTES and its effects are rolled back.
 */
import { describe, expect, it } from 'vitest';
import { sqlError, useTestDb } from '../helpers/db.ts';
import { engineFor, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();
const MiB = 1024 * 1024;

async function rowCounts() {
  const [r] = await t.query(`SELECT (SELECT count(*)::int FROM df.instances) AS instances, (SELECT count(*)::int FROM df.nodes) AS nodes,
                                    (SELECT count(*)::int FROM df.signals) AS signals, (SELECT count(*)::int FROM df.vars) AS vars`);
  return r as { instances: number; nodes: number; signals: number; vars: number };
}

/** df.start of a graph given as JSON, bound as a parameter, with session settings first. */
async function startError(graph: unknown, settings: string[] = []) {
  const c = await t.owner.connect();
  try {
    for (const s of settings) await c.query(s);
    await c.query('SELECT df.start($1)', [JSON.stringify(graph)]);
  } catch (e: any) {
    return { code: e.code as string, message: e.message as string };
  } finally {
    await c.query('RESET ALL');
    c.release();
  }
  throw new Error('df.start succeeded');
}

const sqlNode = (query: string) => ({ node_type: 'SQL', query });

describe('step text (pgflare.max_step_bytes, default 1 MiB)', () => {
  it('a SQL step one byte over the default is refused with 54000 and nothing is written', async () => {
    const before = await rowCounts();
    const exact = `SELECT '${'x'.repeat(MiB - 9)}'`; // "SELECT ''" is 9 bytes
    expect(Buffer.byteLength(exact)).toBe(MiB);
    const tooBig = `SELECT '${'x'.repeat(MiB - 8)}'`;
    expect(Buffer.byteLength(tooBig)).toBe(MiB + 1);
    const e = await startError(sqlNode(tooBig));
    expect(e.code).toBe('54000');
    expect(e.message).toBe(`Workflow step too large: the SQL node's text is ${MiB + 1} bytes, over the limit of ${MiB} bytes (pgflare.max_step_bytes)`);
    expect(await rowCounts()).toEqual(before);
    const [{ id }] = await t.query('SELECT df.start($1) AS id', [JSON.stringify(sqlNode(exact))]);
    expect(id).toMatch(/^[0-9a-f]{8}$/);
  });

  it('counts bytes, not characters, and follows the session setting', async () => {
    const e = await startError(sqlNode(`SELECT '${'é'.repeat(60)}'`), ['SET pgflare.max_step_bytes = 100']);
    expect(e).toEqual({ code: '54000', message: expect.stringContaining('is 129 bytes, over the limit of 100 bytes (pgflare.max_step_bytes)') });
  });

  it('an HTTP body template over the limit is refused at df.start', async () => {
    const before = await rowCounts();
    const http = { node_type: 'HTTP', query: JSON.stringify({ url: 'https://x.example/', method: 'POST', body: 'b'.repeat(2000), headers: {}, timeout_seconds: 5 }) };
    const e = await startError({ node_type: 'THEN', left_node: sqlNode('SELECT 1'), right_node: http }, ['SET pgflare.max_step_bytes = 1000']);
    expect(e.code).toBe('54000');
    expect(e.message).toMatch(/^Workflow step too large: the HTTP node's text is \d+ bytes, over the limit of 1000 bytes/);
    expect(await rowCounts()).toEqual(before);
  });

  it('a setting that is not a positive integer means the default', async () => {
    for (const v of ['', 'abc', '0', '-5', '1e3']) {
      const c = await t.owner.connect();
      try {
        await c.query('BEGIN');
        await c.query(`SELECT set_config('pgflare.max_step_bytes', $1, true)`, [v]);
        const [{ id }] = (await c.query('SELECT df.start($1) AS id', [JSON.stringify(sqlNode(`SELECT '${'x'.repeat(5000)}'`))])).rows;
        expect(id).toMatch(/^[0-9a-f]{8}$/);
      } finally {
        await c.query('ROLLBACK');
        c.release();
      }
    }
  });
});

describe('graph size (pgflare.max_graph_bytes, default 8 MiB)', () => {
  it('a graph whose steps total more than the limit is refused, each step under its own limit', async () => {
    const before = await rowCounts();
    const step = `SELECT '${'y'.repeat(900 * 1024)}'`;
    const branches = Array.from({ length: 10 }, () => sqlNode(step)); // 10 × 900 KiB > 8 MiB
    const e = await startError({ node_type: 'JOIN', left_node: branches[0], right_node: branches[1], extra_nodes: branches.slice(2) });
    expect(e.code).toBe('54000');
    expect(e.message).toMatch(/^Workflow too large: its steps' text totals \d+ bytes, over the limit of 8388608 bytes \(pgflare.max_graph_bytes\)$/);
    expect(await rowCounts()).toEqual(before);
  });

  it('a chain of ?> without !> stops at the limit quickly instead of doubling for seconds (found by fuzzing)', async () => {
    const chain = Array.from({ length: 40 }, (_, i) => `'SELECT ${i % 10}'`).join(' ?> ');
    const t0 = Date.now();
    const e = await sqlError(t, `SELECT df.start(${chain})`);
    expect(e.code).toBe('54000');
    expect(e.message).toMatch(/^Workflow too large: the operands of \?> total \d+ bytes, over the limit of 8388608 bytes/);
    expect(Date.now() - t0).toBeLessThan(5000);
    // a closed if-then-else is unaffected
    const [r] = await t.query(`SELECT df.if_else_op(df.if_then_op('SELECT true', 'SELECT 1'), 'SELECT 2')::jsonb ->> 'node_type' AS k`);
    expect(r.k).toBe('IF');
  });
});

describe('signal data (pgflare.max_signal_bytes, default 1 MiB)', () => {
  it('over the limit: 54000 and no signal row; at the limit: delivered', async () => {
    const id = await start(t, `df.wait_for_signal('go')`);
    const before = await rowCounts();
    const big = JSON.stringify({ d: 'z'.repeat(MiB) });
    const e = await sqlError(t, `SELECT df.signal('${id}', 'go', '${big}')`);
    expect(e.code).toBe('54000');
    expect(e.message).toMatch(/^Signal data too large: \d+ bytes, over the limit of 1048576 bytes \(pgflare.max_signal_bytes\)$/);
    expect(await rowCounts()).toEqual(before);
    const e2 = await sqlError(t, `SELECT df.signal('${id}', 'go', '"${'q'.repeat(30)}"')`, ['SET pgflare.max_signal_bytes = 20']);
    expect(e2.message).toContain('32 bytes, over the limit of 20 bytes');
    await t.query(`SELECT df.signal($1, 'go', $2)`, [id, JSON.stringify({ d: 'ok' })]);
    expect((await rowCounts()).signals).toBe(before.signals + 1);
  });
});

describe('variables (pgflare.max_var_bytes, default 1 MiB)', () => {
  it('setvar over the limit is refused and an existing value is kept', async () => {
    await t.query(`SELECT df.setvar('big', 'small')`);
    const e = await sqlError(t, `SELECT df.setvar('big', repeat('v', ${MiB + 1}))`);
    expect(e).toEqual({ code: '54000', message: `Variable big too large: ${MiB + 1} bytes, over the limit of ${MiB} bytes (pgflare.max_var_bytes)` });
    const e2 = await sqlError(t, `SELECT df.setvar('other', repeat('v', 11))`, ['SET pgflare.max_var_bytes = 10']);
    expect(e2.code).toBe('54000');
    expect(await t.query(`SELECT name, value FROM df.vars ORDER BY name`)).toEqual([{ name: 'big', value: 'small' }]);
    await t.query(`SELECT df.setvar('big', repeat('v', ${MiB}))`);
    const [{ n }] = await t.query(`SELECT octet_length(df.getvar('big')) AS n`);
    expect(n).toBe(MiB);
    await t.query(`SELECT df.clearvars()`);
  });
});

describe('step results (PGFLARE_MAX_RESULT_BYTES, default 16 MiB)', () => {
  it('a SQL step whose result is over the cap fails naming the limit, and its writes are rolled back', async () => {
    await t.query('CREATE TABLE IF NOT EXISTS big_effects (v text)');
    const id = await start(t, `'INSERT INTO big_effects SELECT repeat(''r'', 3000) RETURNING v'`);
    await engineFor(t, { maxResultBytes: 2048 }).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toMatch(/Step result too large: \d+ bytes, over the limit of 2048 bytes \(PGFLARE_MAX_RESULT_BYTES\)/);
    expect(await t.query('SELECT count(*)::int AS n FROM big_effects')).toEqual([{ n: 0 }]);
    // under the cap: the same step completes and its write stays
    const ok = await start(t, `'INSERT INTO big_effects SELECT repeat(''r'', 100) RETURNING v'`);
    await engineFor(t, { maxResultBytes: 2048 }).drain();
    expect((await outcome(t, ok)).status).toBe('completed');
    expect(await t.query('SELECT count(*)::int AS n FROM big_effects')).toEqual([{ n: 1 }]);
  });

  it('an HTTP step (lease path) whose envelope is over the cap fails naming the limit', async () => {
    const http = JSON.stringify({ url: 'https://x.example/', method: 'GET', body: null, headers: {}, timeout_seconds: 5 });
    const [{ id }] = await t.query('SELECT df.start($1) AS id', [JSON.stringify({ node_type: 'HTTP', query: http })]);
    const e = engineFor(t, { maxResultBytes: 4096, http: async () => ({ ok: true, resultText: JSON.stringify({ status: 200, body: 'h'.repeat(5000) }) }) });
    await e.drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toMatch(/Step result too large: \d+ bytes, over the limit of 4096 bytes/);
  });
});
