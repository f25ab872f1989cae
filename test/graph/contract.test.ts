/**
 * DESIGN decision 3: every graph the SQL DSL builds parses with the zod contract in src/graph, and
 * every row df.start writes for it parses as a NodeRow that mirrors the envelope node for node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDb } from '../helpers/db.ts';
import { FIXTURES, needsHttp } from '../helpers/fixtures.ts';
import {
  EnvelopeSchema,
  NodeRowSchema,
  countEnvelopeNodes,
  parseNodeConfig,
  stringifyEnvelope,
  type Envelope,
  type NodeRow,
} from '../../src/graph/schema.ts';

const t = useTestDb();
let c: pg.PoolClient;

beforeAll(async () => {
  c = await t.owner.connect();
  await c.query(`SET pg_durable.http_policy = 'all'`);
  const [{ ready }] = (await c.query(`SELECT to_regprocedure('df.seq(text,text)') IS NOT NULL AS ready`)).rows;
  // Fail loudly rather than skip: the contract is only proven once the DSL exists.
  if (!ready) throw new Error('the SQL DSL (migrations/0002_dsl.sql) is not installed yet');
});

afterAll(() => c?.release());

/** Checks that `rows` (by id) materialise `env` rooted at `id`; returns how many rows it visited. */
function expectRowsMirror(env: Envelope, id: string, byId: Map<string, NodeRow>, path = 'root'): number {
  const row = byId.get(id);
  expect(row, `${path}: row ${id}`).toBeDefined();
  const r = row!;
  expect(r.node_type, path).toBe(env.node_type);
  expect(r.result_name ?? null, path).toBe(env.result_name ?? null);
  let visited = 1;
  const child = (e: Envelope | null | undefined, childId: string | null | undefined, seg: string) => {
    expect(childId ?? null, `${path}.${seg}`).toEqual(e ? expect.any(String) : null);
    if (e && childId) visited += expectRowsMirror(e, childId, byId, `${path}.${seg}`);
  };
  child(env.left_node, r.left_node, 'left');
  child(env.right_node, r.right_node, 'right');

  const config = parseNodeConfig(r);
  if (config.node_type === 'IF') {
    if (env.condition_node) {
      expect(config.condition.kind, path).toBe('node');
      if (config.condition.kind === 'node') child(env.condition_node, config.condition.nodeId, 'condition_node');
    } else {
      expect(r.query, path).toBe(env.query);
    }
  } else if (config.node_type === 'LOOP') {
    child(env.condition_node, config.conditionNode, 'condition_node');
  } else if (config.node_type === 'JOIN') {
    const extras = env.extra_nodes ?? [];
    expect(config.extraNodes.length, path).toBe(extras.length);
    extras.forEach((e, i) => child(e, config.extraNodes[i], `extra_nodes[${i}]`));
  } else if (env.node_type !== 'THEN' && env.node_type !== 'RACE') {
    // Leaves keep their query text exactly.
    expect(r.query, path).toBe(env.query);
  }
  return visited;
}

describe.each(Object.entries(FIXTURES))('fixture %s', (name, expr) => {
  it('builds an envelope that EnvelopeSchema parses, in canonical form', async () => {
    const { rows } = await c.query(`SELECT (${expr})::text AS e`);
    const text: string = rows[0].e;
    const env = EnvelopeSchema.parse(JSON.parse(text));
    // The DSL writes compact JSON with keys in SPEC §1.3 order; only raw JSON may differ.
    expect(stringifyEnvelope(env)).toBe(text);
    if (needsHttp(expr)) expect(text).toContain('"node_type":"HTTP');
  });

  it('starts, and every df.nodes row parses and mirrors the envelope', async () => {
    const env = EnvelopeSchema.parse(JSON.parse((await c.query(`SELECT (${expr})::text AS e`)).rows[0].e));
    const [{ id }] = (await c.query(`SELECT df.start(${expr}, $1) AS id`, [`contract:${name}`])).rows;
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    const [inst] = (await c.query(`SELECT root_node, status FROM df.instances WHERE id = $1`, [id])).rows;
    expect(inst.status).toMatch(/^(pending|running)$/);
    const raw = (await c.query(`SELECT * FROM df.nodes WHERE instance_id = $1`, [id])).rows;
    const rows = raw.map((r) => NodeRowSchema.parse(r));
    expect(rows.length).toBe(countEnvelopeNodes(env));
    for (const r of rows) expect(() => parseNodeConfig(r)).not.toThrow();
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.size).toBe(rows.length);
    expect(expectRowsMirror(env, inst.root_node, byId)).toBe(rows.length);
  });
});

it('every node type and operator is covered by a fixture', async () => {
  const all = Object.values(FIXTURES).join('\n');
  for (const op of ['~>', '|=>', ' & ', ' | ', '?>', '!>', '@>']) expect(all, op).toContain(op);
  const types = new Set<string>();
  for (const expr of Object.values(FIXTURES)) {
    const { rows } = await c.query(`SELECT (${expr})::text AS e`);
    const walk = (e: Envelope) => {
      types.add(e.node_type);
      [e.left_node, e.right_node, e.condition_node, ...(e.extra_nodes ?? [])].forEach((x) => x && walk(x));
    };
    walk(EnvelopeSchema.parse(JSON.parse(rows[0].e)));
  }
  expect([...types].sort()).toEqual(
    ['BREAK', 'HTTP', 'HTTP_MULTIPART', 'IF', 'JOIN', 'LOOP', 'RACE', 'SIGNAL', 'SLEEP', 'SQL', 'THEN', 'WAIT_SCHEDULE'].sort(),
  );
});
