/** SPEC §3.1–§3.3, §3.13, §4.2: THEN order, named results, IF and truthiness, substitution errors. */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';
import { engineFor, outcome, start } from '../../helpers/engine.ts';
import { lit, node, nodes } from './util.ts';

const t = useTestDb();

const run = async (dsl: string) => {
  const id = await start(t, dsl);
  await engineFor(t).drain();
  return id;
};

describe('§3.2 THEN', () => {
  it('THEN runs left before right; result = right result', async () => {
    await t.query('CREATE TABLE seq_log (id serial, v int)');
    const id = await run(`'INSERT INTO seq_log (v) VALUES (1)' ~> 'INSERT INTO seq_log (v) VALUES (2)' ~> 'SELECT array_agg(v ORDER BY id)::text AS vs FROM seq_log'`);
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ vs: '{1,2}' }], row_count: 1 } });
  });

  it('THEN failure in left skips right: right stays pending, reads skipped', async () => {
    const id = await run(`'SELECT 1/0' ~> 'SELECT 2 AS right_side'`);
    expect((await outcome(t, id)).status).toBe('failed');
    const right = await node(t, id, 'SQL', 'right_side');
    expect(right.status).toBe('pending');
    expect(right.inferred_status).toBe('skipped');
    const then = await node(t, id, 'THEN');
    expect(then.status).toBe('failed');
    expect(right.inferred_status_from_ancestor_id).toBe(then.node_id);
    // every ancestor of the failed node carries the same error text (§3.0)
    expect(then.result).toBe('SQL execution failed: error returned from database: division by zero');
  });
});

describe('§3.13/§4.2 named results', () => {
  it('named result (|=>) is visible to every later node in the scope', async () => {
    const id = await run(`'SELECT 5 AS v' |=> 'a' ~> 'SELECT 1' ~> 'SELECT $a + 1 AS w'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ w: 6 }], row_count: 1 });
  });

  it('later writes to a name overwrite it', async () => {
    const id = await run(`'SELECT 1 AS v' |=> 'a' ~> 'SELECT 2 AS v' |=> 'a' ~> 'SELECT $a AS w'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ w: 2 }], row_count: 1 });
  });

  it('$x.* expands a named row set into a VALUES list', async () => {
    const id = await run(
      `${lit(`SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(n, s)`)} |=> 'x' ~> ${lit(
        `SELECT sum(n)::int AS total, string_agg(s, ',' ORDER BY n) AS ss FROM $x.*`,
      )}`,
    );
    expect((await outcome(t, id)).result).toEqual({ rows: [{ total: 3, ss: 'a,b' }], row_count: 1 });
  });

  it('$x? on a result without rows substitutes NULL', async () => {
    const id = await run(`'SELECT 1 AS v WHERE false' |=> 'x' ~> 'SELECT $x? IS NULL AS missing'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ missing: true }], row_count: 1 });
  });

  it("'a' ~> 'b' |=> 'x' ~> 'c' names the THEN (x = b's result)", async () => {
    const id = await run(`'SELECT 1 AS v' ~> 'SELECT 2 AS v' |=> 'x' ~> 'SELECT $x AS got'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ got: 2 }], row_count: 1 });
    const named = (await nodes(t, id)).filter((n) => n.result_name === 'x');
    expect(named.map((n) => n.node_type)).toEqual(['THEN']);
    expect(named[0].result).toEqual({ rows: [{ v: 2 }], row_count: 1 });
  });

  it('a substitution error fails the SQL node with the §4.2 text', async () => {
    const id = await run(`'SELECT 1 AS v WHERE false' |=> 'x' ~> 'SELECT $x AS got'`);
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe('$x has no rows — query returned zero results');
    expect((await node(t, id, 'SQL', '$x AS got')).result).toBe('$x has no rows — query returned zero results');
  });

  it('a NULL first column is a substitution error ($x is NULL …)', async () => {
    const id = await run(`'SELECT NULL::int AS v' |=> 'x' ~> 'SELECT $x AS got'`);
    expect((await outcome(t, id)).output).toBe('$x is NULL — first column of first row is NULL');
  });
});

describe('§3.3 IF', () => {
  it('IF ?> !> runs the condition node then exactly one branch; untaken arm reads skipped', async () => {
    const id = await run(`'SELECT true' ?> 'SELECT ''then'' AS x' !> 'SELECT ''else'' AS x'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ x: 'then' }], row_count: 1 });
    const cond = await node(t, id, 'SQL', 'SELECT true');
    expect(cond.status).toBe('completed');
    const elseArm = await node(t, id, 'SQL', `'else'`);
    expect(elseArm.status).toBe('pending');
    expect(elseArm.inferred_status).toBe('skipped');
  });

  it('IF condition failure fails the IF and runs no branch', async () => {
    const id = await run(`'SELECT 1/0' ?> 'SELECT ''then'' AS x' !> 'SELECT ''else'' AS x'`);
    expect((await outcome(t, id)).status).toBe('failed');
    expect((await nodes(t, id)).filter((n) => n.status === 'completed')).toEqual([]);
  });

  it('IF result is stored under its result_name', async () => {
    const id = await run(`df.if('SELECT false', 'SELECT 1 AS v', 'SELECT 2 AS v') |=> 'r' ~> 'SELECT $r AS got'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ got: 2 }], row_count: 1 });
  });

  it('the condition is the whole sequence for x ~> c ?> t !> e', async () => {
    await t.query('CREATE TABLE if_seq (v int)');
    const id = await run(`'INSERT INTO if_seq VALUES (1)' ~> 'SELECT count(*) > 0 FROM if_seq' ?> 'SELECT ''t'' AS x' !> 'SELECT ''e'' AS x'`);
    expect((await outcome(t, id)).result).toEqual({ rows: [{ x: 't' }], row_count: 1 });
  });

  it('df.if_rows: true iff the named result has rows; no node runs for the test', async () => {
    const a = await run(`'SELECT 1 AS v' |=> 'r' ~> df.if_rows('r', 'SELECT ''some'' AS x', 'SELECT ''none'' AS x')`);
    expect((await outcome(t, a)).result).toEqual({ rows: [{ x: 'some' }], row_count: 1 });
    const b = await run(`'SELECT 1 AS v WHERE false' |=> 'r' ~> df.if_rows('r', 'SELECT ''some'' AS x', 'SELECT ''none'' AS x')`);
    expect((await outcome(t, b)).result).toEqual({ rows: [{ x: 'none' }], row_count: 1 });
  });

  it('df.if_rows on a missing name fails: result not found', async () => {
    const id = await run(`df.if_rows('nope', 'SELECT 1', 'SELECT 2')`);
    expect(await outcome(t, id)).toMatchObject({ status: 'failed', output: "df.if_rows: result 'nope' not found" });
  });

  it('df.if_rows on a non-SQL result fails: missing row_count', async () => {
    const id = await run(`('SELECT 1' & 'SELECT 2') |=> 'j' ~> df.if_rows('j', 'SELECT 1', 'SELECT 2')`);
    expect(await outcome(t, id)).toMatchObject({ status: 'failed', output: "df.if_rows: result 'j' is not a SQL result (missing row_count)" });
  });
});

describe('§3.3 truthiness', () => {
  const pick = async (cond: string) => {
    const id = await run(`df.if(${cond}, 'SELECT ''t'' AS x', 'SELECT ''f'' AS x')`);
    const o = await outcome(t, id);
    expect(o.status).toBe('completed');
    return (o.result as { rows: { x: string }[] }).rows[0].x;
  };

  it('a JOIN result (array) as a condition is true even when every branch is false', async () => {
    expect(await pick(`'SELECT false' & 'SELECT false'`)).toBe('t');
  });

  it('an HTTP-like envelope (object without rows) as a condition is true', async () => {
    expect(await pick(`df.sleep(0)`)).toBe('t');
  });

  it('empty row set is false; first column of first row decides', async () => {
    expect(await pick(`'SELECT true WHERE false'`)).toBe('f');
    expect(await pick(`'SELECT 0 AS a, true AS b'`)).toBe('f');
    expect(await pick(`'SELECT ''{}''::jsonb'`)).toBe('f');
    expect(await pick(`'SELECT NULL::int'`)).toBe('f');
  });

  it('strings: off/n are true, 0.00/f/no/empty are false, nan is true', async () => {
    expect(await pick(`'SELECT ''off'''`)).toBe('t');
    expect(await pick(`'SELECT ''n'''`)).toBe('t');
    expect(await pick(`'SELECT '' 0.00 '''`)).toBe('f');
    expect(await pick(`'SELECT ''No'''`)).toBe('f');
    expect(await pick(`'SELECT '''''`)).toBe('f');
    expect(await pick(`'SELECT ''nan'''`)).toBe('t');
    expect(await pick(`'SELECT 0.0::numeric'`)).toBe('f');
  });
});
