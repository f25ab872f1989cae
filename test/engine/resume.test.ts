/**
 * df.resume (issue 18 item 1) through the engine: a failed instance runs again from what failed, every
 * completed step's effects happen once (counted in user tables), retries start over.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();

const count = async (table: string) => (await t.query(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
const nodes = async (id: string) =>
  t.query(`SELECT query, status, attempts, run_at IS NOT NULL AS queued FROM df.nodes WHERE instance_id = $1 AND node_type = 'SQL' ORDER BY query`, [id]);

describe('df.resume', () => {
  it('a chain: step 1 ran once, step 2 runs again after the fix, step 3 once', async () => {
    await t.query('CREATE TABLE c_effects (step int)');
    const id = await start(
      t,
      `'INSERT INTO c_effects VALUES (1) RETURNING step' |=> 'one'
        ~> 'INSERT INTO c_effects SELECT 2 FROM c_fix'
        ~> 'INSERT INTO c_effects VALUES (3) RETURNING $one AS first'`,
    );
    const e = engineFor(t);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('failed');
    expect((await outcome(t, id)).output).toMatch(/c_fix/);
    expect(await count('c_effects')).toBe(1);

    await t.query('CREATE TABLE c_fix AS SELECT 1 AS x');
    expect(await t.query(`SELECT df.resume($1) AS m`, [id])).toEqual([{ m: `Instance ${id} resumed` }]);
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain();

    const o = await outcome(t, id);
    expect(o).toMatchObject({ status: 'completed', output: expect.any(String), result: { rows: [{ first: 1 }], row_count: 1 } });
    expect(await t.query(`SELECT step, count(*)::int AS n FROM c_effects GROUP BY step ORDER BY step`)).toEqual([
      { step: 1, n: 1 },
      { step: 2, n: 1 },
      { step: 3, n: 1 },
    ]);
    const kinds = await t.query(`SELECT kind, detail FROM df.instance_events($1) WHERE kind = 'resumed'`, [id]);
    expect(kinds).toEqual([{ kind: 'resumed', detail: expect.stringMatching(/c_fix/) }]);
  });

  it("a failed step's retries start over", async () => {
    const id = await start(t, `'SELECT 1' ~> df.retry('SELECT * FROM r_fix', 3, 0)`);
    const e = engineFor(t);
    for (let i = 0; i < 5; i++) await e.drain({ now: later(i * 10) });
    expect((await outcome(t, id)).status).toBe('failed');
    expect((await nodes(id)).find((n) => n.query.includes('r_fix'))).toMatchObject({ status: 'failed', attempts: 3 });

    await t.query(`SELECT df.resume($1)`, [id]);
    expect(await e.runOnce()).toMatchObject({ kind: 'resume', nodeId: (await t.query(`SELECT root_node FROM df.instances WHERE id = $1`, [id]))[0].root_node });
    // The failed step is ready again with no attempts; its first new attempt fails and is retried.
    expect((await nodes(id)).find((n) => n.query.includes('r_fix'))).toMatchObject({ status: 'running', attempts: 0, queued: true });
    expect(await e.runOnce()).toMatchObject({ kind: 'retry' });
    expect((await nodes(id)).find((n) => n.query.includes('r_fix'))).toMatchObject({ status: 'running', attempts: 1, queued: true });
    await t.query('CREATE TABLE r_fix AS SELECT 7 AS x');
    await e.drain({ now: later(60) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ x: 7 }] } });
    expect((await nodes(id)).find((n) => n.query.includes('r_fix'))).toMatchObject({ status: 'completed', attempts: 2 });
  });

  it('a JOIN with one failed branch re-runs only that branch', async () => {
    await t.query('CREATE TABLE j_effects (branch text)');
    const id = await start(
      t,
      `('INSERT INTO j_effects VALUES (''a'') RETURNING branch' |=> 'a')
        & ('INSERT INTO j_effects VALUES (''b1'')' ~> 'INSERT INTO j_effects SELECT ''b2'' FROM j_fix RETURNING branch')
        ~> 'INSERT INTO j_effects VALUES (''after'') RETURNING $a AS a'`,
    );
    const e = engineFor(t);
    await e.drain({ concurrency: 2 });
    expect((await outcome(t, id)).status).toBe('failed');
    expect(await t.query(`SELECT branch FROM j_effects ORDER BY branch`)).toEqual([{ branch: 'a' }, { branch: 'b1' }]);

    await t.query('CREATE TABLE j_fix AS SELECT 1 AS x');
    await t.query(`SELECT df.resume($1)`, [id]);
    await e.drain({ concurrency: 2 });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ a: 'a' }] } });
    expect(await t.query(`SELECT branch, count(*)::int AS n FROM j_effects GROUP BY branch ORDER BY branch`)).toEqual([
      { branch: 'a', n: 1 },
      { branch: 'after', n: 1 },
      { branch: 'b1', n: 1 },
      { branch: 'b2', n: 1 },
    ]);
  });

  // The instance-root loop iterates the root scope; a loop after a step has a scope of its own.
  it.each([
    ['at the root', 'l', ''],
    ['in its own scope', 'm', `'SELECT 0' ~> `],
  ])('a failure inside a loop iteration resumes in that iteration (%s)', async (_, p, before) => {
    await t.query(`CREATE TABLE ${p}_ticks (n int)`);
    await t.query(`CREATE TABLE ${p}_effects (n int, step text)`);
    await t.query(`CREATE TABLE ${p}_fix (x int)`);
    // Each iteration: tick, record "a", then a step that fails in iteration 3 until fixed; break after 4.
    const id = await start(
      t,
      `${before}df.loop(
         'INSERT INTO ${p}_ticks SELECT coalesce(max(n), 0) + 1 FROM ${p}_ticks RETURNING n' |=> 'tick'
         ~> 'INSERT INTO ${p}_effects VALUES ($tick, ''a'')'
         ~> 'INSERT INTO ${p}_effects SELECT $tick, ''b'' WHERE $tick <> 3 OR 1 / (SELECT count(*) FROM ${p}_fix)::int = 1'
         ~> ('SELECT $tick >= 4' ?> df.break('done') !> 'SELECT 0'))`,
    );
    const e = engineFor(t);
    for (let i = 1; i < 10; i++) await e.drain({ now: later(i * 2) });
    expect((await outcome(t, id)).status).toBe('failed');
    expect(await count(`${p}_ticks`)).toBe(3);

    await t.query(`INSERT INTO ${p}_fix VALUES (1)`);
    await t.query(`SELECT df.resume($1)`, [id]);
    for (let i = 1; i < 10; i++) await e.drain({ now: later(30 + i * 2) });
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: 'done' });
    // Iteration 3 was not started again: 4 ticks, each step once per iteration.
    expect(await count(`${p}_ticks`)).toBe(4);
    expect(await t.query(`SELECT n, step, count(*)::int AS c FROM ${p}_effects GROUP BY n, step ORDER BY n, step`)).toEqual(
      [1, 2, 3, 4].flatMap((n) => [
        { n, step: 'a', c: 1 },
        { n, step: 'b', c: 1 },
      ]),
    );
  });

  it('a RACE lost by a failing branch runs that branch again and the other from where it stopped', async () => {
    await t.query('CREATE TABLE r_effects (step text)');
    const id = await start(
      t,
      `('INSERT INTO r_effects VALUES (''a1'')' ~> 'SELECT * FROM race_fix')
        | ('INSERT INTO r_effects VALUES (''b1'')' ~> df.sleep(60) ~> 'INSERT INTO r_effects VALUES (''b2'') RETURNING step')`,
    );
    const e = engineFor(t);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('failed');
    expect((await outcome(t, id)).output).toMatch(/^RACE left branch failed/);
    expect(await t.query(`SELECT step FROM r_effects ORDER BY step`)).toEqual([{ step: 'a1' }, { step: 'b1' }]);

    await t.query('CREATE TABLE race_fix AS SELECT 1 AS won');
    await t.query(`SELECT df.resume($1)`, [id]);
    await e.drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ won: 1 }] } });
    // Neither branch's first step ran again; the loser's sleep was started again and withdrawn when the left won.
    expect(await t.query(`SELECT step FROM r_effects ORDER BY step`)).toEqual([{ step: 'a1' }, { step: 'b1' }]);
    await e.drain({ now: later(120) });
    expect(await t.query(`SELECT step FROM r_effects ORDER BY step`)).toEqual([{ step: 'a1' }, { step: 'b1' }]);
  });

  it("a replayed named result keeps its column order (bare $name is the first column; jsonb would sort it)", async () => {
    const id = await start(t, `'SELECT ''x'' AS zeta, 1 AS a' |=> 'v' ~> 'SELECT * FROM n_fix' ~> 'SELECT $v AS first'`);
    const e = engineFor(t);
    await e.drain();
    await t.query('CREATE TABLE n_fix AS SELECT 1');
    await t.query(`SELECT df.resume($1)`, [id]);
    await e.drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ first: 'x' }] } });
  });

  it('an instance failed by a df.break() outside any loop fails again with the same error (it is not left running)', async () => {
    const id = await start(t, `'SELECT 1' ~> df.break('x')`);
    const e = engineFor(t);
    await e.drain();
    const failed = await outcome(t, id);
    expect(failed.status).toBe('failed');
    await t.query(`SELECT df.resume($1)`, [id]);
    expect(await e.drain()).toBeGreaterThan(0);
    expect(await outcome(t, id)).toEqual(failed);
  });

  it('a failed root step runs again', async () => {
    const id = await start(t, `'SELECT * FROM o_fix'`);
    const e = engineFor(t);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('failed');
    await t.query('CREATE TABLE o_fix AS SELECT 5 AS x');
    await t.query(`SELECT df.resume($1)`, [id]);
    await e.drain();
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', output: expect.any(String), result: { rows: [{ x: 5 }] } });
  });

  it('df.restart starts a new instance of the same graph and label that runs everything again', async () => {
    await t.query('CREATE TABLE s_effects (n int)');
    const id = await start(t, `'INSERT INTO s_effects VALUES (1)' ~> 'SELECT * FROM s_fix'`, 'nightly');
    const e = engineFor(t);
    await e.drain();
    await t.query('CREATE TABLE s_fix AS SELECT 9 AS x');
    const [{ id: again }] = await t.query(`SELECT df.restart($1) AS id`, [id]);
    expect(again).not.toBe(id);
    await e.drain();
    expect(await outcome(t, again)).toMatchObject({ status: 'completed', result: { rows: [{ x: 9 }] } });
    expect((await outcome(t, id)).status).toBe('failed');
    expect(await t.query(`SELECT label FROM df.instances WHERE id = $1`, [again])).toEqual([{ label: 'nightly' }]);
    expect(await count('s_effects')).toBe(2);
  });
});
