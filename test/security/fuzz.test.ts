/**
 * Fuzz (issue 7 item 6): random and mutated DSL strings, graph JSON documents and REST requests. Each
 * either works or fails with a stable SQLSTATE / a 4xx JSON error, a failed df.start leaves no rows (SQL
 * and REST), and the engine then drains everything that was kept without throwing.
 *
 * Bounded and deterministic in `npm test` (FUZZ_SCALE 0.1: 1,010 inputs, fixed seed). `npm run fuzz`
 * runs FUZZ_SCALE=1 (10,100 inputs). FUZZ_SEED=<n> reproduces a run, FUZZ_SEED=random picks one; the
 * seed and the count of every outcome are printed at the end. FUZZ_SLOW=<ms> prints slow inputs.
 *
 * SQL inputs run in batches inside one PL/pgSQL call per batch (one round trip for hundreds of inputs);
 * each input is isolated in its own BEGIN … EXCEPTION block, i.e. a savepoint. Most successful starts are
 * rolled back on purpose (after checking them) so the drain stays small; a seeded sample is kept.
 */
import { randomInt } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { silentLogger } from '../../src/log.ts';
import { createEngine } from '../../src/engine/engine.ts';
import { useTestDb } from '../helpers/db.ts';
import { genDsl, genGraph, genRest, mulberry32 } from './fuzz-gen.ts';

const SEED =
  process.env.FUZZ_SEED === 'random' ? randomInt(2 ** 32) : process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : 0x5eed_f1a2;
const SCALE = Number(process.env.FUZZ_SCALE ?? 0.1);
/** Per-test time budget: generous for the full run; the bounded run takes a few seconds per test. */
const BUDGET_MS = Math.max(60_000, Math.round(300_000 * SCALE));
const N_DSL = Math.round(4500 * SCALE);
const N_GRAPH = Math.round(4000 * SCALE);
const N_REST = Math.round(1600 * SCALE);
const BATCH = 200;

/**
 * `SELECT <expr>` is the control: a mangled DSL string is arbitrary SQL there, so any error of the
 * classes a bad statement raises is expected (syntax/semantics 42, data 22, limits 54, feature 0A,
 * schema 3F, object state 55, pgflare PF). Anything else (a crash 58/XX, a lost connection, 23 integrity) is not.
 */
const EVAL_CLASSES = new Set(['42', '22', '54', '0A', '3F', '55', 'PF']);
/** What df._eval_dsl (the REST API's DSL path) may raise: its own rejection, or the evaluated DSL's. */
const API_EVAL_STATES = new Set([
  'PF001', 'PF002', '22023', '22004', '54000', '54001', '55000', '0A000',
  '42601', '42883', '42725', '42804', '42846', '42P18', '42704',
  '22P02', '22P05', '22021', '22003', '22008', '22007',
]);
/** What df.start may raise for a document. 22P02/22P05: JSON text PostgreSQL's parser refuses (a lone surrogate escape, \u0000), a 422 over REST. */
const START_STATES = new Set(['PF001', '54000', '22023', '22004', '55000', '0A000', '22P02', '22P05']);
const engineThrows: string[] = [];

const t = useTestDb();
const OWNER = inject('pg').owner;
const TOKEN = 'fuzz-static-token-0123456789abcdef';

const seen = { eval: new Map<string, number>(), apiEval: new Map<string, number>(), start: new Map<string, number>(), rest: new Map<string, number>() };
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
const counts = { dsl: 0, dslEvaluated: 0, dslStarted: 0, graph: 0, graphStarted: 0, rest: 0, rest2xx: 0, kept: 0, drained: 0, cancelled: 0 };
const kept: string[] = [];
const t0 = Date.now();

let c: pg.PoolClient;

interface Row {
  idx: number;
  eval_state: string | null;
  eval_msg: string | null;
  api_state: string | null;
  api_msg: string | null;
  built: boolean;
  start_state: string | null;
  start_msg: string | null;
  id: string | null;
  problem: string | null;
  ms: number;
}

const FUZZ_FN = String.raw`
CREATE FUNCTION pg_temp.fuzz_batch(mode text, inputs text[], keep boolean[])
RETURNS TABLE (idx int, eval_state text, eval_msg text, api_state text, api_msg text, built boolean,
               start_state text, start_msg text, id text, problem text, ms float8)
LANGUAGE plpgsql AS $f$
DECLARE
  t0 timestamptz; v text; st text; mt text; sid text;
BEGIN
  FOR k IN 1 .. coalesce(array_length(inputs, 1), 0) LOOP
    idx := k; eval_state := NULL; eval_msg := NULL; api_state := NULL; api_msg := NULL; built := false;
    start_state := NULL; start_msg := NULL; id := NULL; problem := NULL; v := NULL; t0 := clock_timestamp();
    IF mode = 'dsl' THEN
      BEGIN
        PERFORM df._eval_dsl(inputs[k]);
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, mt = MESSAGE_TEXT;
        api_state := st; api_msg := mt;
      END;
      BEGIN
        EXECUTE 'SELECT ' || inputs[k] INTO v;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, mt = MESSAGE_TEXT;
        eval_state := st; eval_msg := mt; v := NULL;
      END;
    ELSE
      v := inputs[k];
    END IF;
    IF eval_state IS NULL AND v IS NOT NULL AND (mode <> 'dsl' OR ltrim(v, E' \t\n\r') LIKE '{%') THEN
      built := true;
      BEGIN
        sid := df.start(v);
        id := sid;
        IF sid IS NULL THEN problem := 'df.start returned NULL';
        ELSIF NOT EXISTS (SELECT 1 FROM df.instances AS x WHERE x.id = sid) THEN problem := 'no instance row for the returned id';
        ELSIF NOT EXISTS (SELECT 1 FROM df.nodes AS x WHERE x.instance_id = sid) THEN problem := 'an instance without nodes';
        END IF;
        IF NOT keep[k] THEN RAISE EXCEPTION 'fuzz: roll this start back' USING ERRCODE = 'PFZZZ'; END IF;
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, mt = MESSAGE_TEXT;
        id := NULL;  -- rolled back, whether it failed or was not sampled
        IF st <> 'PFZZZ' THEN start_state := st; start_msg := mt; END IF;
      END;
    END IF;
    ms := 1000 * extract(epoch FROM clock_timestamp() - t0);
    RETURN NEXT;
  END LOOP;
END
$f$`;

const show = (s: string) => JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}…(${s.length} chars)` : s);

const COUNTS = `SELECT (SELECT count(*) FROM df.instances)::int AS i, (SELECT count(*) FROM df.nodes)::int AS n,
                        (SELECT count(*) FROM df.events)::int AS e, (SELECT count(*) FROM df.scopes)::int AS s`;

/**
 * Runs one batch; then checks that the only rows added are the sampled instances and their nodes (every
 * failed or rolled-back start left nothing behind). VACUUM keeps the dead rows of rolled-back starts
 * from slowing the next batch down.
 */
async function runBatch(mode: 'dsl' | 'graph', inputs: string[], keep: boolean[], bad: string[]): Promise<Row[]> {
  const before = (await c.query(COUNTS)).rows[0];
  const { rows } = await c.query<Row>({ text: 'SELECT * FROM pg_temp.fuzz_batch($1, $2, $3) ORDER BY idx', values: [mode, inputs, keep], queryMode: 'extended' } as any);
  const after = (await c.query(COUNTS)).rows[0];
  const ids = rows.flatMap((x) => (x.id ? [x.id] : []));
  const [{ n }] = (await c.query('SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = ANY($1::text[])', [ids])).rows;
  const want = { i: before.i + ids.length, n: before.n + n, e: before.e, s: before.s };
  if (JSON.stringify(after) !== JSON.stringify(want)) bad.push(`rows left behind by a ${mode} batch: before ${JSON.stringify(before)} after ${JSON.stringify(after)} expected ${JSON.stringify(want)}`);
  await c.query('VACUUM df.instances, df.nodes');
  return rows;
}

beforeAll(async () => {
  c = await t.owner.connect();
  // a guard only: no input should get near it (a 57014 would fail the test)
  await c.query(`SET statement_timeout = '60s'`);
  await c.query(FUZZ_FN);
});

afterAll(async () => {
  await c?.query('DISCARD TEMP').catch(() => undefined);
  c?.release();
  const fmt = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}:${v}`).join(' ');
  console.log(
    `fuzz seed=${SEED} (0x${SEED.toString(16)}) ${Date.now() - t0} ms; counts ${JSON.stringify(counts)}\n` +
      `  eval SQLSTATEs:      ${fmt(seen.eval)}\n  _eval_dsl SQLSTATEs: ${fmt(seen.apiEval)}\n` +
      `  start SQLSTATEs:     ${fmt(seen.start)}\n  REST statuses/codes: ${fmt(seen.rest)}`,
  );
});

function seedOnFailure() {
  onTestFailed(() => console.error(`fuzz failed with FUZZ_SEED=${SEED} (reproduce: FUZZ_SEED=${SEED} npx vitest run test/security/fuzz.test.ts, with FUZZ_SCALE=${SCALE})`));
}

describe(`fuzz (seed ${SEED})`, () => {
  it(`DSL strings: SELECT <expr> and df._eval_dsl return text or raise a stable SQLSTATE; df.start leaves nothing on failure`, async () => {
    seedOnFailure();
    const r = mulberry32(SEED ^ 0x1111);
    const bad: string[] = [];
    for (let done = 0; done < N_DSL; done += BATCH) {
      const inputs = Array.from({ length: Math.min(BATCH, N_DSL - done) }, () => genDsl(r));
      const keep = inputs.map(() => r.chance(0.03));
      for (const row of await runBatch('dsl', inputs, keep, bad)) {
        const input = inputs[row.idx - 1]!;
        counts.dsl++;
        bump(seen.eval, row.eval_state ?? 'ok');
        bump(seen.apiEval, row.api_state ?? 'ok');
        if (row.eval_state === null) counts.dslEvaluated++;
        if (row.eval_state && !EVAL_CLASSES.has(row.eval_state.slice(0, 2))) bad.push(`SELECT ${show(input)} raised ${row.eval_state}: ${row.eval_msg}`);
        if (row.api_state && !API_EVAL_STATES.has(row.api_state)) bad.push(`df._eval_dsl(${show(input)}) raised ${row.api_state}: ${row.api_msg}`);
        if (row.built) {
          bump(seen.start, row.start_state ?? 'ok');
          if (row.start_state && !START_STATES.has(row.start_state)) bad.push(`df.start(SELECT ${show(input)}) raised ${row.start_state}: ${row.start_msg}`);
          if (!row.start_state) counts.dslStarted++;
        }
        if (row.problem) bad.push(`df.start(SELECT ${show(input)}): ${row.problem}`);
        if (row.id) kept.push(row.id);
        if (process.env.FUZZ_SLOW && row.ms > Number(process.env.FUZZ_SLOW)) console.log(`slow ${row.ms.toFixed(0)} ms: ${show(input)} ${row.eval_state} ${row.api_state}`);
      }
    }
    expect(bad.slice(0, 20), `${bad.length} bad DSL inputs`).toEqual([]);
    expect(counts.dsl).toBe(N_DSL);
  }, BUDGET_MS);

  it('graph JSON documents: df.start returns an id or raises PF001/54000/22023/22004 and leaves nothing behind', async () => {
    seedOnFailure();
    const r = mulberry32(SEED ^ 0x2222);
    const bad: string[] = [];
    for (let done = 0; done < N_GRAPH; done += BATCH) {
      const inputs = Array.from({ length: Math.min(BATCH, N_GRAPH - done) }, () => genGraph(r));
      const keep = inputs.map(() => r.chance(0.05));
      for (const row of await runBatch('graph', inputs, keep, bad)) {
        const input = inputs[row.idx - 1]!;
        counts.graph++;
        bump(seen.start, row.start_state ?? 'ok');
        if (row.start_state && !START_STATES.has(row.start_state)) bad.push(`df.start(${show(input)}) raised ${row.start_state}: ${row.start_msg}`);
        if (!row.start_state) counts.graphStarted++;
        if (row.problem) bad.push(`df.start(${show(input)}): ${row.problem}`);
        if (row.id) kept.push(row.id);
        if (process.env.FUZZ_SLOW && row.ms > Number(process.env.FUZZ_SLOW)) console.log(`slow ${row.ms.toFixed(0)} ms: ${show(input)} ${row.start_state}`);
      }
    }
    expect(bad.slice(0, 20), `${bad.length} bad graph documents`).toEqual([]);
    expect(counts.graph).toBe(N_GRAPH);
  }, BUDGET_MS);

  it('REST bodies and query strings: every response is 2xx or a 4xx {error:{code,message}}, never 5xx', async () => {
    seedOnFailure();
    const app = createApp({ db: t.db, log: silentLogger, staticTokens: [{ token: TOKEN, role: OWNER }] });
    const r = mulberry32(SEED ^ 0x3333);
    const bad: string[] = [];
    const cancel: string[] = [];
    const queue = Array.from({ length: N_REST }, () => genRest(r, kept.slice(0, 40)));
    const keepIt = queue.map(() => r.chance(0.1));
    const [{ n: instancesBefore }] = await t.query<{ n: number }>('SELECT count(*)::int AS n FROM df.instances');
    let created = 0;
    // two requests in flight, like two API clients
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        const i = next++;
        const rc = queue[i]!;
        const res = await app.request(rc.path, { method: rc.method, headers: { ...rc.headers, Authorization: `Bearer ${TOKEN}` }, body: rc.body });
        const text = await res.text();
        counts.rest++;
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        const what = `${rc.method} ${show(rc.path)} ${JSON.stringify(rc.headers)} body=${show(rc.body ?? '')}`;
        if (res.status >= 200 && res.status < 300) {
          counts.rest2xx++;
          bump(seen.rest, String(res.status));
          if (body === undefined) bad.push(`${what} → ${res.status} with a non-JSON body`);
          if (rc.method === 'POST' && res.status === 201) {
            created++;
            if (typeof body?.instance_id !== 'string') bad.push(`${what} → 201 without an instance_id`);
            else (keepIt[i] ? kept : cancel).push(body.instance_id);
          }
        } else {
          bump(seen.rest, `${res.status}:${body?.error?.code}`);
          if (res.status < 400 || res.status >= 500) bad.push(`${what} → ${res.status} ${show(text)}`);
          else if (typeof body?.error?.code !== 'string' || typeof body?.error?.message !== 'string') bad.push(`${what} → ${res.status} without {error:{code,message}}: ${show(text)}`);
        }
      }
    };
    await Promise.all([worker(), worker()]);
    // Every refused start left nothing: the only new instances are the 201s.
    const [{ n: instancesAfter }] = await t.query<{ n: number }>('SELECT count(*)::int AS n FROM df.instances');
    if (instancesAfter - instancesBefore !== created) bad.push(`REST left rows behind: ${instancesAfter - instancesBefore} new instances for ${created} 201 responses`);
    counts.cancelled = cancel.length;
    // Instances not sampled for the drain are cancelled over the API (a terminal state), keeping the drain small.
    for (const id of cancel) {
      const res = await app.request(`/v1/instances/${id}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
      if (res.status !== 200) bad.push(`cancel ${id} → ${res.status} ${await res.text()}`);
    }
    expect(bad.slice(0, 20), `${bad.length} bad REST responses`).toEqual([]);
    expect(counts.rest).toBe(N_REST);
  }, BUDGET_MS);

  it('the engine drains everything that was started without throwing; every instance ends terminal or waiting', async () => {
    seedOnFailure();
    counts.kept = kept.length;
    const engine = createEngine({ db: t.db, log: silentLogger, stepTimeoutMs: 2000 });
    const MAX = 20_000;
    for (let round = 0; ; round++) {
      try {
        counts.drained += await engine.drain({ concurrency: 1, maxSteps: MAX });
        break;
      } catch (err: any) {
        // The worker must never throw on user input. Record the instance with its nodes, cancel it and
        // drain on, so one run reports every such input; the test fails below.
        const m = /of ([0-9a-f]{8})\//.exec(String(err?.message));
        const nodes = m ? await t.query('SELECT id, node_type, query, result_name, left_node, right_node, status FROM df.nodes WHERE instance_id = $1', [m[1]]) : [];
        engineThrows.push(`${err?.message} — nodes ${JSON.stringify(nodes).slice(0, 1500)}`);
        if (!m || round >= 10) throw err;
        await t.query('SELECT df.cancel($1, $2)', [m[1], 'fuzz: engine threw']);
      }
    }
    expect(counts.drained, 'drain hit its step bound').toBeLessThan(MAX);
    expect(await engine.runOnce(), 'a node is still ready after the drain').toBeNull();

    const rows = await t.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM df.instances GROUP BY status');
    const byStatus = Object.fromEntries(rows.map((x) => [x.status, x.n]));
    console.log(`fuzz drain: ${counts.drained} steps over ${kept.length} kept instances; statuses ${JSON.stringify(byStatus)}`);
    for (const s of Object.keys(byStatus)) expect(['completed', 'failed', 'cancelled', 'running', 'pending']).toContain(s);
    // waiting = not terminal, and no node of it is due (runOnce found nothing above)
    const orphans = await t.query('SELECT n.id FROM df.nodes n LEFT JOIN df.instances i ON i.id = n.instance_id WHERE i.id IS NULL LIMIT 5');
    expect(orphans).toEqual([]);
    const empty = await t.query('SELECT i.id FROM df.instances i WHERE NOT EXISTS (SELECT 1 FROM df.nodes n WHERE n.instance_id = i.id) LIMIT 5');
    expect(empty).toEqual([]);
    const [{ n }] = await t.query<{ n: number }>('SELECT count(*)::int AS n FROM df.instances WHERE id <> ALL($1::text[])', [kept]);
    expect(n, 'instances that are neither kept nor cancelled over the API').toBe(counts.cancelled);
    expect(engineThrows, `the engine threw ${engineThrows.length} times`).toEqual([]);
  }, BUDGET_MS);
});
