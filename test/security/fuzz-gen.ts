/**
 * Deterministic input generators for test/security/fuzz.test.ts: a seeded PRNG (mulberry32) and three
 * families of hostile input (DSL text, graph JSON documents, REST requests). Everything here is pure:
 * the same seed gives the same inputs, so a failure reproduces with FUZZ_SEED=<seed>.
 */
import { FIXTURES } from '../helpers/fixtures.ts';

export type Rng = {
  (): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
};

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  const next = (() => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as Rng;
  next.int = (n) => Math.floor(next() * n);
  next.pick = (xs) => xs[next.int(xs.length)]!;
  next.chance = (p) => next() < p;
  return next;
}

/**
 * Fixtures that are safe to evaluate and run in bulk: no HTTP (policy is disabled; they would only
 * raise 55000, which the fuzz still covers through the raw text), and no real sleeping in SQL.
 */
export const CORPUS: string[] = Object.values(FIXTURES).map((f) => f.replaceAll('pg_sleep(1)', 'pg_sleep(0)'));

// ---------- family 1: DSL strings ----------

const TOKEN = /'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_.]*|\d+(?:\.\d+)?|~>|\|=>|\?>|!>|@>|::|=>|[&|(),]|\s+|./gs;

export function tokenize(s: string): string[] {
  return s.match(TOKEN) ?? [];
}

const FRAGMENTS = [
  "'", "''", '\\', '\\\\', '$$', '$1', '$a', '$name', '$row.id', '$x.*', '{', '}', '{x}', '{sys_instance_id}', '{sys_label}',
  '(', ')', ',', ' ', '~>', '|=>', '&', '|', '?>', '!>', '@>', '::jsonb', '::text', '::int', 'NULL', 'true', '42', '-1', '1e309',
  'df.sql(', 'df.join(', 'df.loop(', 'df.break(', 'df.if(', 'df.as(', 'df.seq(', 'df.race(', 'df.sleep(', 'df.retry(',
  'df.timeout(', 'df.wait_for_signal(', 'df.wait_for_schedule(', 'df.if_rows(', 'df.join3(', 'df.nope(', 'df.',
  ';', '--', '/*', '*/', 'E\'', 'U&\'', '"', 'é', '😀', '\u202e', '\u2028', '\uFEFF', '\t', '\n', '\r', '\x01', '\x1b', '\x7f',
  "'SELECT 1'", "'SELECT $$x$$'", "'{\"node_type\":\"SQL\",\"query\":\"SELECT 1\"}'", "'{\"node_type\":\"NOPE\"}'",
  'timeout_seconds => 1', "' || '", "'); SELECT 1; --",
];

const CONTENT_BITS = ["'", "''", '\\', '$$', '$1', '$x', '$row.id', '{', '}', '{sys_instance_id}', '{x', 'é', '😀', '\u202e', '\t', '\n', '"', '\\"', '\x02', ';', '--', '*/'];
const OPS = [' ~> ', ' |=> ', ' & ', ' | ', ' ?> ', ' !> '];
const FNS1 = ['df.sql', 'df.loop', 'df.break', 'df.sleep', 'df.wait_for_signal', 'df.wait_for_schedule', 'df.as', 'df.timeout', 'df.retry'];
const FNS2 = ['df.seq', 'df.join', 'df.race', 'df.as', 'df.if_rows', 'df.timeout', 'df.retry', 'df.loop'];

const sqlLit = (s: string) => `'${s.replaceAll("'", "''")}'`;

function randomText(r: Rng, max = 40): string {
  let s = '';
  const n = r.int(max);
  for (let i = 0; i < n; i++) s += r.chance(0.3) ? r.pick(CONTENT_BITS) : String.fromCharCode(32 + r.int(95));
  return s;
}

function mutateLiteral(r: Rng, tok: string): string {
  const inner = tok.slice(1, -1).replaceAll("''", "'");
  const at = r.int(inner.length + 1);
  const changed = inner.slice(0, at) + randomText(r, 8) + inner.slice(at);
  // mostly keep the literal well-formed (so the hostile text reaches the DSL), sometimes not
  return r.chance(0.8) ? sqlLit(changed) : `'${changed}'`;
}

function mutateOnce(r: Rng, toks: string[]): string[] {
  const t = [...toks];
  const i = r.int(Math.max(1, t.length));
  switch (r.int(8)) {
    case 0: t.splice(i, 1); break; // delete
    case 1: t.splice(i, 0, t[i] ?? ''); break; // duplicate
    case 2: { const j = r.int(t.length); [t[i], t[j]] = [t[j]!, t[i]!]; break; } // swap
    case 3: t.splice(i, 0, r.pick(FRAGMENTS)); break; // insert a fragment
    case 4: { // mutate a string literal's content
      const lits = t.flatMap((x, k) => (x.startsWith("'") && x.length > 1 ? [k] : []));
      if (lits.length) { const k = r.pick(lits); t[k] = mutateLiteral(r, t[k]!); }
      break;
    }
    case 5: t.splice(i, 1, r.pick(FRAGMENTS)); break; // replace
    case 6: t.splice(i, r.int(4)); break; // delete a run
    default: t.splice(i, 0, ` ${r.pick(OPS).trim()} `, r.pick(CORPUS)); break; // graft another fixture
  }
  // a swap past the end leaves holes
  return t.filter((x): x is string => typeof x === 'string');
}

/** One DSL input: a fixture, combined, wrapped or mutated; occasionally very long. Never contains NUL. */
export function genDsl(r: Rng): string {
  let s: string;
  switch (r.int(10)) {
    case 0: s = r.pick(CORPUS); break;
    case 1: s = `(${r.pick(CORPUS)})${r.pick(OPS)}(${r.pick(CORPUS)})`; break;
    case 2: s = `${r.pick(FNS1)}(${r.chance(0.5) ? r.pick(CORPUS) : sqlLit(randomText(r))})`; break;
    case 3: s = `${r.pick(FNS2)}(${r.pick(CORPUS)}, ${r.chance(0.5) ? r.pick(CORPUS) : sqlLit(randomText(r))})`; break;
    case 4: { // long: a long literal, or a long chain of operators
      s = r.chance(0.5)
        ? `df.sql(${sqlLit('SELECT ' + "'x'".repeat(1 + r.int(r.chance(0.1) ? 20_000 : 500)))})`
        : Array.from({ length: 2 + r.int(r.chance(0.05) ? 300 : 40) }, () => sqlLit(`SELECT ${r.int(9)}`)).join(r.pick(OPS));
      break;
    }
    case 5: s = Array.from({ length: 1 + r.int(12) }, () => r.pick(FRAGMENTS)).join(r.chance(0.5) ? ' ' : ''); break;
    default: {
      let toks = tokenize(r.pick(CORPUS));
      const n = 1 + r.int(4);
      for (let k = 0; k < n; k++) toks = mutateOnce(r, toks);
      s = toks.join('');
    }
  }
  if (r.chance(0.03)) s = s.repeat(2 + r.int(3));
  s = s.replaceAll('\0', '');
  return s.trim() === '' ? "''" : s;
}

// ---------- family 2: graph JSON documents ----------

const NODE_TYPES = ['SQL', 'SEQ', 'JOIN', 'RACE', 'IF', 'LOOP', 'BREAK', 'SLEEP', 'SIGNAL', 'SCHEDULE', 'HTTP', 'sql', 'NOPE', '', 'IF_ROWS', 'TIMEOUT'];
const KEYS = ['node_type', 'query', 'left_node', 'right_node', 'condition_node', 'extra_nodes', 'result_name', 'options', 'bogus', '', '\u0000x'.slice(1), '__proto__'];

function randomScalar(r: Rng): unknown {
  return r.pick<unknown>([null, true, false, 0, -1, 1.5, 1e308, 'SELECT 1', '', '{', '$$', "'; DROP TABLE df.nodes; --", 'é😀', [], {}, '\\', 'x'.repeat(r.int(3000))]);
}

function sqlNode(r: Rng): Record<string, unknown> {
  return { node_type: 'SQL', query: r.chance(0.8) ? `SELECT ${r.int(100)}` : randomText(r) };
}

function randomNode(r: Rng, depth: number): unknown {
  if (depth <= 0 || r.chance(0.35)) return r.chance(0.85) ? sqlNode(r) : randomScalar(r);
  const node: Record<string, unknown> = { node_type: r.pick(NODE_TYPES) };
  const keys = 1 + r.int(5);
  for (let i = 0; i < keys; i++) {
    const k = r.pick(KEYS);
    if (k === 'node_type') continue;
    node[k] = k.endsWith('_node') ? randomNode(r, depth - 1)
      : k === 'extra_nodes' ? (r.chance(0.8) ? Array.from({ length: r.int(4) }, () => randomNode(r, depth - 1)) : randomScalar(r))
      : k === 'query' ? (r.chance(0.7) ? `SELECT ${r.int(9)}` : randomScalar(r))
      : k === 'options' ? (r.chance(0.5) ? { timeout_seconds: r.pick([1, -1, 'x', null, 1e9]), max_attempts: r.pick([1, 0, 3, 'y']) } : randomScalar(r))
      : randomScalar(r);
  }
  return node;
}

function deep(r: Rng, depth: number): unknown {
  let node: unknown = sqlNode(r);
  const kind = r.pick(['SEQ', 'JOIN', 'LOOP', 'IF']);
  for (let i = 0; i < depth; i++) {
    node = kind === 'LOOP' ? { node_type: 'LOOP', left_node: node }
      : kind === 'IF' ? { node_type: 'IF', condition_node: sqlNode(r), left_node: node, right_node: sqlNode(r) }
      : { node_type: kind, left_node: node, right_node: sqlNode(r) };
  }
  return node;
}

/** Re-serializes with one key duplicated (JSON.stringify never writes duplicates). */
function withDuplicateKey(r: Rng, doc: string): string {
  const dup = r.pick([`"node_type":"NOPE",`, `"node_type":"SQL",`, `"query":"SELECT 2",`, `"left_node":null,`, `"extra_nodes":7,`]);
  return doc.startsWith('{') ? `{${dup}${doc.slice(1)}` : doc;
}

function mutateText(r: Rng, s: string): string {
  const i = r.int(s.length + 1);
  switch (r.int(5)) {
    case 0: return s.slice(0, i); // truncate
    case 1: return s.slice(0, i) + s.slice(i + 1 + r.int(10));
    case 2: return s.slice(0, i) + r.pick(['"', '{', '}', '[', ']', ',', ':', '\\', '\\u0000', '\\ud800', 'é', 'null', '1e999', '$$']) + s.slice(i);
    case 3: return s.slice(0, i) + s.slice(i, i + 20) + s.slice(i); // duplicate a run
    default: return s.replace(/"[A-Z]+"/, `"${r.pick(NODE_TYPES)}"`);
  }
}

/** One graph document as text (usually JSON, sometimes broken JSON). */
export function genGraph(r: Rng): string {
  let doc: string;
  const k = r.int(1000);
  if (k < 4) doc = JSON.stringify(deep(r, 250 + r.int(60))); // around the depth limit
  else if (k < 8) {
    doc = JSON.stringify({
      node_type: 'JOIN', left_node: sqlNode(r), right_node: sqlNode(r),
      extra_nodes: Array.from({ length: 900 + r.int(200) }, () => (r.chance(0.98) ? sqlNode(r) : randomNode(r, 1))),
    });
  } else if (k < 60) doc = JSON.stringify(deep(r, 1 + r.int(40)));
  else if (k < 160) doc = JSON.stringify(randomScalar(r));
  else doc = JSON.stringify(randomNode(r, 1 + r.int(5)));
  if (r.chance(0.1)) doc = withDuplicateKey(r, doc);
  if (r.chance(0.2)) doc = mutateText(r, doc);
  return doc.replaceAll('\0', '');
}

// ---------- family 3: REST requests ----------

export interface RestCase {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/xml', 'application/json; charset=latin1'];

function queryString(r: Rng): string {
  const parts: string[] = [];
  const n = r.int(5);
  for (let i = 0; i < n; i++) {
    const key = r.pick(['status', 'limit', 'label', 'cursor', 'bogus', 'status', '', '%00', 'limit[]', '__proto__']);
    const value = r.pick([
      'pending', 'running', 'completed', 'failed', 'cancelled', 'nope', '', '0', '1', '1000', '1001', '-5', '1.5', 'abc', '1e3',
      'ff', '00', 'zz', 'a'.repeat(300), 'ab'.repeat(300), '%27%3B--', '%E9', '%ZZ', '%F0%9F%98%80', 'x'.repeat(257), '%00',
    ]);
    parts.push(r.chance(0.1) ? key : `${key}=${value}`);
  }
  return parts.length ? `?${parts.join('&')}` : r.chance(0.2) ? '?' : '';
}

function startBody(r: Rng): string {
  const k = r.int(12);
  const label = () => r.pick<unknown>(['ok', '', 'x'.repeat(256), 'x'.repeat(257), 'é'.repeat(200), 7, null, ['a'], "'; --"]);
  const obj: Record<string, unknown> = {};
  if (k < 5) obj.workflow = r.chance(0.9) ? genDsl(r) : r.pick<unknown>([7, null, [], {}, '', 'x'.repeat(262_145)]);
  else if (k < 8) {
    const g = genGraph(r);
    try { obj.graph = JSON.parse(g); } catch { obj.graph = g; }
  } else if (k < 9) { obj.workflow = genDsl(r); obj.graph = { node_type: 'SQL', query: 'SELECT 1' }; }
  else if (k < 10) obj.bogus = 1;
  if (r.chance(0.3)) obj.label = label();
  if (r.chance(0.05)) obj.extra = 'x';
  switch (r.int(14)) {
    case 0: return randomText(r, 60);
    case 1: return JSON.stringify(obj).slice(0, -1 - r.int(5)); // truncated
    case 2: return JSON.stringify([obj]);
    case 3: return r.pick(['null', '1', '"x"', 'true', '[]', '{}', '', '   ', '{"workflow":', '\uFEFF{}']);
    default: return JSON.stringify(obj);
  }
}

/** Values PostgreSQL cannot hold (U+0000, a lone surrogate) or that look like SQL, as JS strings. */
const HOSTILE_VALUES = ['\u0000', 'a\u0000b', '\ud800', "'; DROP TABLE df.instances; --", '$$', '\\', 'é😀', '\u202e', '', ' '];
/** The same as JSON escapes written into a body by hand. */
const HOSTILE_ESCAPES = ['\\u0000', 'a\\u0000b', '\\ud800', '\\udc00x', '\\\\', '\\"'];

/** A path segment: a real-looking id or name, or something hostile, percent-encoded or not. */
function segment(r: Rng, ids: readonly string[]): string {
  switch (r.int(6)) {
    case 0: return r.pick(['%00', '%27%3B--', '%E9', '%ZZ', 'x'.repeat(300), '..', '%2F', '%F0%9F%98%80', 'deadbeef', '00000000']);
    case 1: return encodeURIComponent(randomText(r, 20));
    default: return ids.length ? r.pick(ids) : 'deadbeef';
  }
}

/** Cancel and signal requests against ids seen so far (or made up), with hostile names, reasons and payloads. */
function controlRequest(r: Rng, ids: readonly string[]): RestCase {
  const json = { 'Content-Type': 'application/json' };
  const value = (): unknown => r.pick<unknown>([...HOSTILE_VALUES, 1, null, [], { a: 'b' }, 'z'.repeat(r.chance(0.02) ? 1_100_000 : 10)]);
  if (r.chance(0.5)) {
    const body = r.int(4) === 0 ? randomText(r, 30) : JSON.stringify(r.chance(0.7) ? { reason: value() } : {});
    return { method: 'POST', path: `/v1/instances/${segment(r, ids)}/cancel`, headers: json, body };
  }
  const body = r.int(5) === 0 ? randomText(r, 30) : r.int(5) === 0 ? `{"v":"${r.pick(HOSTILE_ESCAPES)}"}` : JSON.stringify({ v: value() });
  return { method: 'POST', path: `/v1/instances/${segment(r, ids)}/signals/${segment(r, ['go', 'approve'])}`, headers: json, body };
}

export function genRest(r: Rng, ids: readonly string[] = []): RestCase {
  const headers: Record<string, string> = {};
  if (r.chance(0.15)) return controlRequest(r, ids);
  if (r.int(10) < 8) return {
    method: 'POST',
    path: `/v1/instances${r.chance(0.1) ? queryString(r) : ''}`,
    headers: r.chance(0.7) ? { 'Content-Type': 'application/json' } : r.chance(0.5) ? { 'Content-Type': r.pick(CONTENT_TYPES) } : headers,
    body: startBody(r),
  };
  return { method: 'GET', path: `/v1/instances${queryString(r)}`, headers };
}
