/**
 * Pure tests of the Checkpoint machine (SPEC §3) on hand-built graphs: no database. A tiny in-memory
 * "engine" applies `changes` the way df._apply does, so multi-step paths can be driven event by event.
 */
import { describe, expect, it } from 'vitest';
import {
  BREAK_OUTSIDE_LOOP,
  breakValueText,
  buildGraph,
  Checkpoint,
  checkpointReadSet,
  childScopeId,
  MissingData,
  scopeChainOfStamp,
  scopeOfStamp,
  storedResult,
  type Changes,
  type Graph,
  type GraphRow,
  type NodeState,
  type Outcome,
  type ScopeState,
} from './advance.ts';

const ID = 'a1b2c3d4';
const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const sqlRes = (v: number) => `{"rows":[{"v":${v}}],"row_count":1}`;

// ----- graph builders (ids are 8 hex chars) ---------------------------------------------------

let seq = 0;
function rowsOf(): { rows: GraphRow[]; add: (r: Omit<GraphRow, 'id'> & { id?: string }) => string } {
  const rows: GraphRow[] = [];
  return {
    rows,
    add(r) {
      const id = r.id ?? (++seq).toString(16).padStart(8, '0');
      rows.push({ ...r, id } as GraphRow);
      return id;
    },
  };
}
const leaf = (type: string, query: string, result_name: string | null = null) => ({
  node_type: type,
  query,
  result_name,
  left_node: null,
  right_node: null,
});
const pair = (type: string, left: string, right: string, query: string | null = null, result_name: string | null = null) => ({
  node_type: type,
  query,
  result_name,
  left_node: left,
  right_node: right,
});

// ----- a minimal engine around the machine ----------------------------------------------------

interface Sim {
  g: Graph;
  nodes: Map<string, NodeState & { run_at: string | null; result?: string | null }>;
  scopes: Map<string, ScopeState>;
  generation: number;
  instance: { status: string; output?: string };
  last: Changes | null;
}

function sim(g: Graph): Sim {
  return { g, nodes: new Map(), scopes: new Map(), generation: 1, instance: { status: 'pending' }, last: null };
}

/** Runs one event with every row available (or only `only`), applies its changes like df._apply. */
function step(s: Sim, now: Date, event: (cp: Checkpoint) => void, only?: { nodes: string[]; scopes: string[] }): Changes {
  const cp = new Checkpoint({
    graph: s.g,
    now,
    nodes: [...s.nodes.values()].filter((n) => !only || only.nodes.includes(n.id)).map(({ id, status, stamp, state }) => ({ id, status, stamp, state })),
    scopes: [...s.scopes.values()].filter((x) => !only || only.scopes.includes(x.id)).map((x) => ({ ...x, named: { ...x.named } })),
    instanceGeneration: s.generation,
  });
  event(cp);
  const ch = cp.changes;
  for (const [id, c] of ch.nodes) {
    const cur = s.nodes.get(id) ?? { id, status: 'pending' as const, stamp: null, state: null, run_at: null };
    s.nodes.set(id, {
      ...cur,
      status: c.status ?? cur.status,
      stamp: c.stamp ?? cur.stamp,
      state: 'state' in c ? (c.state ?? null) : cur.state,
      run_at: 'run_at' in c ? (c.run_at ?? null) : cur.run_at,
      result: 'result' in c ? c.result : cur.result,
    });
  }
  for (const x of ch.scopes.values()) s.scopes.set(x.id, structuredClone(x));
  for (const id of ch.scopeDeletes) s.scopes.delete(id);
  for (const p of ch.cancelScopes) {
    for (const n of s.nodes.values()) if (n.run_at && n.stamp?.startsWith(`${p}::`)) n.run_at = null;
    for (const id of [...s.scopes.keys()]) if (id === p || id.startsWith(`${p}::`)) s.scopes.delete(id);
  }
  if (ch.instance) {
    if (!['completed', 'failed', 'cancelled'].includes(s.instance.status)) {
      if (ch.instance.status) s.instance.status = ch.instance.status;
      if (ch.instance.output !== undefined) s.instance.output = ch.instance.output ?? undefined;
    }
    if (ch.instance.generation) s.generation = ch.instance.generation;
  }
  s.last = ch;
  return ch;
}

const startSim = (s: Sim, now = T0) => step(s, now, (cp) => cp.start());
const done = (s: Sim, id: string, outcome: Outcome, now = T0) => step(s, now, (cp) => cp.complete(id, s.nodes.get(id)!.stamp!, outcome));
const ok = (text: string): Outcome => ({ kind: 'ok', text });
const fail = (error: string): Outcome => ({ kind: 'fail', error });
const readyIds = (ch: Changes) => ch.ready.map((r) => r.id);
const st = (s: Sim, id: string) => s.nodes.get(id)!;

// ----- tests ----------------------------------------------------------------------------------

describe('stamps and scope ids (§3.0)', () => {
  it('scopeChainOfStamp / scopeOfStamp / childScopeId', () => {
    expect(scopeChainOfStamp(`${ID}::1`)).toEqual([ID]);
    expect(scopeChainOfStamp(`${ID}::2::0000abcd::3`)).toEqual([ID, `${ID}::2::0000abcd`]);
    expect(scopeOfStamp(`${ID}::2::0000abcd::3`)).toBe(`${ID}::2::0000abcd`);
    expect(childScopeId({ id: ID, generation: 4 }, '0000abcd')).toBe(`${ID}::4::0000abcd`);
  });

  it('storedResult keeps JSON and quotes other text; breakValueText per §3.7', () => {
    expect(storedResult('{"a":1}')).toBe('{"a":1}');
    expect(storedResult('division by zero')).toBe('"division by zero"');
    expect(breakValueText(null)).toBe('null');
    expect(breakValueText('done')).toBe('"done"');
    expect(breakValueText('{"status": "done"}')).toBe('{"status":"done"}');
  });
});

describe('THEN (§3.2)', () => {
  it('left ok activates right in the same scope; right result is the THEN result and instance output', () => {
    const b = rowsOf();
    const l = b.add(leaf('SQL', 'SELECT 1'));
    const r = b.add(leaf('SQL', 'SELECT 2'));
    const then = b.add(pair('THEN', l, r, null, 'x'));
    const s = sim(buildGraph(ID, then, b.rows));
    expect(readyIds(startSim(s))).toEqual([l]);
    expect(st(s, then)).toMatchObject({ status: 'running', stamp: `${ID}::1` });
    expect(s.instance.status).toBe('running');
    expect(readyIds(done(s, l, ok(sqlRes(1))))).toEqual([r]);
    expect(st(s, r).stamp).toBe(`${ID}::1`);
    done(s, r, ok(sqlRes(2)));
    expect(st(s, then)).toMatchObject({ status: 'completed', result: sqlRes(2) });
    expect(s.instance).toEqual({ status: 'completed', output: sqlRes(2) });
    expect(s.scopes.get(ID)!.named).toEqual({ x: sqlRes(2) });
  });

  it('left failure fails THEN and instance with the same text; right never activated', () => {
    const b = rowsOf();
    const l = b.add(leaf('SQL', 'SELECT 1/0'));
    const r = b.add(leaf('SQL', 'SELECT 2'));
    const then = b.add(pair('THEN', l, r));
    const s = sim(buildGraph(ID, then, b.rows));
    startSim(s);
    expect(readyIds(done(s, l, fail('boom')))).toEqual([]);
    expect(st(s, then)).toMatchObject({ status: 'failed', result: '"boom"' });
    expect(s.nodes.has(r)).toBe(false);
    expect(s.instance).toEqual({ status: 'failed', output: 'boom' });
  });

  it('a top-level break fails the instance with the outside-loop text; the BREAK row reads completed', () => {
    const b = rowsOf();
    const l = b.add(leaf('SQL', 'SELECT 1'));
    const r = b.add(leaf('BREAK', '{"break_value":"x"}'));
    const then = b.add(pair('THEN', l, r));
    const s = sim(buildGraph(ID, then, b.rows));
    startSim(s);
    done(s, l, ok(sqlRes(1)));
    expect(s.instance).toEqual({ status: 'failed', output: BREAK_OUTSIDE_LOOP });
    expect(st(s, r)).toMatchObject({ status: 'completed', result: '"x"' });
  });
});

describe('IF (§3.3)', () => {
  it('if_rows reads the named result in scope; missing name fails at once without a leaf', () => {
    const b = rowsOf();
    const t1 = b.add(leaf('SQL', 'SELECT 1'));
    const e1 = b.add(leaf('SQL', 'SELECT 2'));
    const iff = b.add(pair('IF', t1, e1, '{"condition_type":"result_has_rows","result_name":"nope"}'));
    const s = sim(buildGraph(ID, iff, b.rows));
    expect(readyIds(startSim(s))).toEqual([]);
    expect(s.instance).toEqual({ status: 'failed', output: "df.if_rows: result 'nope' not found" });
  });

  it('the condition node result picks the branch by truthiness ("off" is true)', () => {
    const b = rowsOf();
    const c = b.add(leaf('SQL', 'SELECT 0'));
    const t1 = b.add(leaf('SQL', 'SELECT 1'));
    const e1 = b.add(leaf('SQL', 'SELECT 2'));
    const iff = b.add(pair('IF', t1, e1, JSON.stringify({ condition_node: c })));
    const s = sim(buildGraph(ID, iff, b.rows));
    expect(readyIds(startSim(s))).toEqual([c]);
    expect(readyIds(done(s, c, ok('{"rows":[{"x":"off"}],"row_count":1}')))).toEqual([t1]);
  });
});

describe('JOIN (§3.4)', () => {
  function join3() {
    const b = rowsOf();
    const x = b.add(leaf('SQL', 'SELECT 1', 'a'));
    const y = b.add(leaf('SQL', 'SELECT 2', 'shared'));
    const z = b.add(leaf('SQL', 'SELECT 3', 'shared'));
    const j = b.add(pair('JOIN', x, y, JSON.stringify({ extra_nodes: [z] }), 'arr'));
    return { g: buildGraph(ID, j, b.rows), x, y, z, j };
  }

  it('join counting: completes only when every branch reported, whatever the order; array in branch order', () => {
    const { g, x, y, z, j } = join3();
    const s = sim(g);
    expect(readyIds(startSim(s))).toEqual([x, y, z]);
    expect(st(s, z).stamp).toBe(`${ID}::1::${z}::1`);
    done(s, z, ok(sqlRes(3)));
    expect(st(s, j).state).toEqual({ done: 1 });
    done(s, x, ok(sqlRes(1)));
    expect(st(s, j)).toMatchObject({ status: 'running', state: { done: 2 } });
    done(s, y, ok(sqlRes(2)));
    const expected = `[${sqlRes(1)},${sqlRes(2)},${sqlRes(3)}]`;
    expect(st(s, j)).toMatchObject({ status: 'completed', result: expected });
    expect(s.instance.output).toBe(expected);
    // names merged in branch order: y then z, so z's `shared` wins although z finished first
    expect(s.scopes.get(ID)!.named).toEqual({ a: sqlRes(1), shared: sqlRes(3), arr: expected });
    // branch scopes are gone
    expect([...s.scopes.keys()]).toEqual([ID]);
  });

  it('MissingData: the leaf read set lacks sibling scopes; the event asks for them and a re-run matches a full run', () => {
    const { g, x, y, z, j } = join3();
    const s = sim(g);
    startSim(s);
    done(s, x, ok(sqlRes(1)));
    done(s, y, ok(sqlRes(2)));
    const read = checkpointReadSet(g, z, st(s, z).stamp);
    expect(read).toEqual({ nodes: [z, j], scopes: [ID, `${ID}::1::${z}`] });
    let missing: MissingData | null = null;
    try {
      step(s, T0, (cp) => cp.complete(z, st(s, z).stamp!, ok(sqlRes(3))), read);
    } catch (e) {
      missing = e as MissingData;
    }
    expect(missing).toBeInstanceOf(MissingData);
    expect(missing!.scopes.sort()).toEqual([`${ID}::1::${x}`, `${ID}::1::${y}`].sort());
    // the failed attempt wrote nothing
    expect(st(s, j).status).toBe('running');
    const rerun = step(s, T0, (cp) => cp.complete(z, st(s, z).stamp!, ok(sqlRes(3))), {
      nodes: read.nodes,
      scopes: [...read.scopes, ...missing!.scopes],
    });
    expect(rerun.nodes.get(j)).toMatchObject({ status: 'completed' });
    expect(s.instance.status).toBe('completed');
  });

  it('MissingData for a node row (a LOOP ancestor not in the given rows)', () => {
    const b = rowsOf();
    const body = b.add(leaf('SQL', 'SELECT 1'));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: body, right_node: null });
    const s = sim(buildGraph(ID, loop, b.rows));
    startSim(s);
    expect(() => step(s, at(10), (cp) => cp.complete(body, st(s, body).stamp!, ok(sqlRes(1))), { nodes: [body], scopes: [ID] })).toThrow(
      MissingData,
    );
  });

  it('first failed branch in order fails the JOIN (1-based), after all branches ended', () => {
    const { g, x, y, z, j } = join3();
    const s = sim(g);
    startSim(s);
    done(s, z, fail('third'));
    done(s, y, fail('second'));
    expect(st(s, j).status).toBe('running');
    done(s, x, ok(sqlRes(1)));
    expect(st(s, j)).toMatchObject({ status: 'failed', result: JSON.stringify('JOIN branch 2 failed: second') });
    expect(s.instance.output).toBe('JOIN branch 2 failed: second');
  });

  it('a break in an earlier branch wins over a later failure (re-raised as a break)', () => {
    const b = rowsOf();
    const brk = b.add(leaf('BREAK', '{"break_value":"stop"}'));
    const bad = b.add(leaf('SQL', 'SELECT 1/0'));
    const j = b.add(pair('JOIN', brk, bad));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: j, right_node: null });
    const s = sim(buildGraph(ID, loop, b.rows));
    expect(readyIds(startSim(s))).toEqual([bad]);
    expect(s.scopes.get(`${ID}::1::${brk}`)).toMatchObject({ status: 'broke', result: '"stop"' });
    done(s, bad, fail('boom'));
    expect(st(s, loop)).toMatchObject({ status: 'completed', result: '"stop"' });
    expect(s.instance).toEqual({ status: 'completed', output: '"stop"' });
  });
});

describe('named-result merging on break (pg_durable execute_join_node / execute_race_node)', () => {
  /** LOOP(JOIN(branch1, branch2)) where one branch names a result and then breaks. */
  function joinBreak(breakFirst: boolean) {
    const b = rowsOf();
    const a = b.add(leaf('SQL', 'SELECT a', 'a'));
    const brk = b.add(leaf('BREAK', '{"break_value":"stop"}'));
    const named = b.add(pair('THEN', a, brk));
    const other = b.add(leaf('SQL', 'SELECT b', 'b'));
    const j = breakFirst ? b.add(pair('JOIN', named, other)) : b.add(pair('JOIN', other, named));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: j, right_node: null });
    return { g: buildGraph(ID, loop, b.rows), a, other };
  }

  it('JOIN: the breaking branch merges its names; later branches are not merged', () => {
    const { g, a, other } = joinBreak(true);
    const s = sim(g);
    startSim(s);
    done(s, other, ok(sqlRes(2)));
    done(s, a, ok(sqlRes(1)));
    expect(s.instance.status).toBe('completed');
    expect(s.scopes.get(ID)!.named).toEqual({ a: sqlRes(1) });
  });

  it('JOIN: branches before the breaking one are merged too', () => {
    const { g, a, other } = joinBreak(false);
    const s = sim(g);
    startSim(s);
    done(s, a, ok(sqlRes(1)));
    done(s, other, ok(sqlRes(2)));
    expect(s.scopes.get(ID)!.named).toEqual({ a: sqlRes(1), b: sqlRes(2) });
  });

  it('RACE: a winner that breaks still merges its names', () => {
    const b = rowsOf();
    const a = b.add(leaf('SQL', 'SELECT a', 'a'));
    const brk = b.add(leaf('BREAK', '{"break_value":"stop"}'));
    const named = b.add(pair('THEN', a, brk));
    const slow = b.add(leaf('SLEEP', '30'));
    const rc = b.add(pair('RACE', named, slow));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: rc, right_node: null });
    const s = sim(buildGraph(ID, loop, b.rows));
    startSim(s);
    done(s, a, ok(sqlRes(1)));
    expect(s.instance).toEqual({ status: 'completed', output: '"stop"' });
    expect(s.scopes.get(ID)!.named).toEqual({ a: sqlRes(1) });
  });
});

describe('RACE (§3.5)', () => {
  function race(leftType = 'SLEEP', leftQuery = '30') {
    const b = rowsOf();
    const l = b.add(leaf(leftType, leftQuery));
    const r = b.add(leaf('SQL', 'SELECT 2', 'w'));
    const race = b.add(pair('RACE', l, r));
    return { g: buildGraph(ID, race, b.rows), l, r, race };
  }

  it('first finisher decides; loser scope cancelled; a late finisher (race decided twice) changes nothing', () => {
    const { g, l, r, race: rc } = race();
    const s = sim(g);
    startSim(s);
    const keepLoserScope = structuredClone(s.scopes.get(`${ID}::1::${l}`)!);
    const ch = done(s, r, ok(sqlRes(2)));
    expect(ch.cancelScopes).toEqual([`${ID}::1::${l}`]);
    expect(st(s, rc)).toMatchObject({ status: 'completed', result: sqlRes(2) });
    expect(s.scopes.get(ID)!.named).toEqual({ w: sqlRes(2) });
    expect(st(s, l).run_at).toBeNull();
    // the loser reports anyway (its scope row resurrected for the test: the machine must still ignore it)
    s.scopes.set(keepLoserScope.id, keepLoserScope);
    const late = done(s, l, ok('{"slept":true,"seconds":30}'), at(30_000));
    expect(late.nodes.get(rc)).toBeUndefined();
    expect(late.instance).toBeNull();
    expect(late.scopeDeletes.has(keepLoserScope.id)).toBe(true);
    expect(s.instance).toEqual({ status: 'completed', output: sqlRes(2) });
  });

  it('failure of the first finisher fails the RACE with the side prefix', () => {
    const { g, r } = race();
    const s = sim(g);
    startSim(s);
    done(s, r, fail('boom'));
    expect(s.instance).toEqual({ status: 'failed', output: 'RACE right branch failed: boom' });
  });

  it('a race decided while starting (left breaks at once) does not start the loser', () => {
    const b = rowsOf();
    const brk = b.add(leaf('BREAK', '{"break_value":"race-done"}'));
    const slow = b.add(leaf('SQL', 'SELECT pg_sleep(10)'));
    const rc = b.add(pair('RACE', brk, slow));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: rc, right_node: null });
    const s = sim(buildGraph(ID, loop, b.rows));
    const ch = startSim(s);
    expect(readyIds(ch)).toEqual([]);
    expect(s.nodes.has(slow)).toBe(false);
    expect(ch.scopes.has(`${ID}::1::${slow}`)).toBe(false);
    expect(s.instance).toEqual({ status: 'completed', output: '"race-done"' });
  });

  it('a losing LOOP is stamped failed "Loop branch cancelled after losing RACE" at <scope>::<gen>::<loop>::1', () => {
    const b = rowsOf();
    const body = b.add(leaf('SQL', 'SELECT 1'));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: body, right_node: null });
    const fast = b.add(leaf('SLEEP', '3'));
    const rc = b.add(pair('RACE', loop, fast));
    const s = sim(buildGraph(ID, rc, b.rows));
    startSim(s);
    // the loop iterates twice in its branch scope (paced), bumping that scope's generation
    done(s, body, ok(sqlRes(1)), at(100));
    step(s, at(1000), (cp) => cp.resumeLoop(loop, st(s, loop).stamp!));
    expect(st(s, body).stamp).toBe(`${ID}::1::${loop}::2`);
    done(s, fast, ok('{"slept":true,"seconds":3}'), at(3000));
    expect(st(s, loop)).toMatchObject({ status: 'failed', result: '"Loop branch cancelled after losing RACE"', stamp: `${ID}::1::${loop}::1` });
    expect([...s.nodes.values()].filter((n) => n.run_at)).toEqual([]);
  });

  it('a losing LOOP that loses while the race starts is stamped failed and never started', () => {
    const b = rowsOf();
    const brk = b.add(leaf('BREAK', '{"break_value":"x"}'));
    const body = b.add(leaf('SQL', 'SELECT 1'));
    const loser = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: body, right_node: null });
    const rc = b.add(pair('RACE', brk, loser));
    const outer = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: rc, right_node: null });
    const s = sim(buildGraph(ID, outer, b.rows));
    startSim(s);
    expect(st(s, loser)).toMatchObject({ status: 'failed', result: '"Loop branch cancelled after losing RACE"', stamp: `${ID}::1::${loser}::1` });
    expect(s.nodes.has(body)).toBe(false);
    expect(s.instance).toEqual({ status: 'completed', output: '"x"' });
  });
});

describe('LOOP (§3.6)', () => {
  function whileLoop(name: string | null = 'r') {
    const b = rowsOf();
    const body = b.add(leaf('SQL', 'INSERT … RETURNING v', name));
    const cond = b.add(leaf('SQL', 'SELECT more'));
    const loop = b.add({ node_type: 'LOOP', query: JSON.stringify({ condition_node: cond }), result_name: null, left_node: body, right_node: null });
    return { b, body, cond, loop };
  }

  it('do-while: the condition runs after the body; falsy → loop result = this iteration body result', () => {
    const { b, body, cond, loop } = whileLoop();
    const s = sim(buildGraph(ID, loop, b.rows));
    expect(readyIds(startSim(s))).toEqual([body]);
    expect(readyIds(done(s, body, ok(sqlRes(7))))).toEqual([cond]);
    done(s, cond, ok('{"rows":[{"more":false}],"row_count":1}'));
    expect(st(s, loop)).toMatchObject({ status: 'completed', result: sqlRes(7) });
    expect(s.instance.output).toBe(sqlRes(7));
  });

  it('pacing: an iteration under 1 s parks the loop until iteration start + 1 s; resume runs the body at generation + 1', () => {
    const { b, body, cond, loop } = whileLoop();
    const s = sim(buildGraph(ID, loop, b.rows));
    startSim(s, T0);
    done(s, body, ok(sqlRes(1)), at(200));
    const ch = done(s, cond, ok('{"rows":[{"more":true}],"row_count":1}'), at(300));
    expect(ch.ready).toEqual([{ id: loop, runAt: at(1000).toISOString() }]);
    expect(st(s, loop)).toMatchObject({ status: 'running', stamp: `${ID}::2`, state: { resume: true } });
    expect(s.generation).toBe(2);
    // the root loop starts the iteration with no named results
    expect(s.scopes.get(ID)!.named).toEqual({});
    const resumed = step(s, at(1000), (cp) => cp.resumeLoop(loop, st(s, loop).stamp!));
    expect(readyIds(resumed)).toEqual([body]);
    expect(st(s, body).stamp).toBe(`${ID}::2`);
  });

  it('an iteration that took ≥ 1 s starts the next one at once', () => {
    const { b, body, cond, loop } = whileLoop();
    const s = sim(buildGraph(ID, loop, b.rows));
    startSim(s, T0);
    done(s, body, ok(sqlRes(1)), at(1500));
    const ch = done(s, cond, ok('true'), at(1600));
    expect(readyIds(ch)).toEqual([body]);
    expect(st(s, body).stamp).toBe(`${ID}::2`);
  });

  it('non-root loop keeps its named results across iterations and hands them to the parent on exit', () => {
    const b = rowsOf();
    const pre = b.add(leaf('SQL', 'SELECT base', 'base'));
    const body = b.add(leaf('SQL', 'SELECT v', 'last'));
    const cond = b.add(leaf('SQL', 'SELECT more'));
    const loop = b.add({ node_type: 'LOOP', query: JSON.stringify({ condition_node: cond }), result_name: 'lr', left_node: body, right_node: null });
    const then = b.add(pair('THEN', pre, loop));
    const s = sim(buildGraph(ID, then, b.rows));
    startSim(s);
    done(s, pre, ok(sqlRes(100)));
    const ls = `${ID}::1::${loop}`;
    expect(st(s, loop).stamp).toBe(`${ls}::1`);
    expect(s.scopes.get(ls)!.named).toEqual({ base: sqlRes(100) });
    done(s, body, ok(sqlRes(1)), at(10));
    done(s, cond, ok('true'), at(20));
    expect(s.scopes.get(ls)).toMatchObject({ generation: 2, named: { base: sqlRes(100), last: sqlRes(1) } });
    expect(s.generation).toBe(1); // the root generation is untouched
    step(s, at(1000), (cp) => cp.resumeLoop(loop, st(s, loop).stamp!));
    done(s, body, ok(sqlRes(2)), at(1100));
    done(s, cond, ok('false'), at(1200));
    expect(s.scopes.has(ls)).toBe(false);
    expect(s.scopes.get(ID)!.named).toEqual({ base: sqlRes(100), last: sqlRes(2), lr: sqlRes(2) });
    expect(st(s, then)).toMatchObject({ status: 'completed', result: sqlRes(2) });
  });

  it('a break in the while-condition ends the loop with the break value', () => {
    const b = rowsOf();
    const body = b.add(leaf('SQL', 'SELECT 1'));
    const cond = b.add(leaf('BREAK', '{"break_value":"condition-done"}'));
    const loop = b.add({ node_type: 'LOOP', query: JSON.stringify({ condition_node: cond }), result_name: null, left_node: body, right_node: null });
    const s = sim(buildGraph(ID, loop, b.rows));
    startSim(s);
    done(s, body, ok(sqlRes(1)));
    expect(st(s, loop)).toMatchObject({ status: 'completed', result: '"condition-done"' });
    expect(s.instance.output).toBe('"condition-done"');
  });

  it('iteration cap: the iteration whose number would be ≥ 100000 fails the loop', () => {
    const b = rowsOf();
    const body = b.add(leaf('SQL', 'SELECT 1'));
    const loop = b.add({ node_type: 'LOOP', query: null, result_name: null, left_node: body, right_node: null });
    const g = buildGraph(ID, loop, b.rows);
    const run = (gen: number) => {
      const s = sim(g);
      s.generation = gen;
      startSim(s);
      done(s, body, ok(sqlRes(1)), at(5000));
      return s;
    };
    const below = run(99_998);
    expect(below.instance.status).toBe('running');
    expect(below.generation).toBe(99_999);
    const capped = run(99_999);
    expect(capped.instance).toEqual({
      status: 'failed',
      output: 'Loop exceeded maximum iteration count of 100000. Use df.break() to exit the loop or restructure the workflow.',
    });
    expect(st(capped, loop).status).toBe('failed');
  });

  it('a body failure fails the loop and stops iterating', () => {
    const { b, body, loop } = whileLoop();
    const s = sim(buildGraph(ID, loop, b.rows));
    startSim(s);
    expect(readyIds(done(s, body, fail('boom')))).toEqual([]);
    expect(st(s, loop).status).toBe('failed');
    expect(s.instance).toEqual({ status: 'failed', output: 'boom' });
  });
});

describe('timers and signals (§3.8–§3.10)', () => {
  it('SLEEP is ready at now + N s; WAIT_SCHEDULE at the next cron fire after now (UTC)', () => {
    const b = rowsOf();
    const sl = b.add(leaf('SLEEP', '90'));
    const w = b.add(leaf('WAIT_SCHEDULE', '{"cron_expr":"*/5 * * * *"}'));
    const then = b.add(pair('THEN', sl, w));
    const s = sim(buildGraph(ID, then, b.rows));
    expect(startSim(s, at(30_000)).ready).toEqual([{ id: sl, runAt: at(120_000).toISOString() }]);
    expect(done(s, sl, ok('{"slept":true,"seconds":90}'), at(120_000)).ready).toEqual([{ id: w, runAt: '2030-01-01T00:05:00.000Z' }]);
  });

  it('SIGNAL subscribes (signal floor) and is parked without a timeout, or until its deadline', () => {
    const b = rowsOf();
    const a = b.add(leaf('SIGNAL', '{"signal_name":"go","timeout_seconds":null}'));
    const c = b.add(leaf('SIGNAL', '{"signal_name":"go","timeout_seconds":5}'));
    const j = b.add(pair('JOIN', a, c));
    const s = sim(buildGraph(ID, j, b.rows));
    const ch = startSim(s);
    expect(ch.ready).toEqual([{ id: c, runAt: at(5000).toISOString() }]);
    expect(ch.nodes.get(a)).toMatchObject({ status: 'running', signal_floor: true, state: { deadline: null } });
    expect(ch.nodes.get(c)).toMatchObject({ signal_floor: true, state: { deadline: at(5000).toISOString() } });
  });
});
