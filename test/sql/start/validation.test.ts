/**
 * SPEC §1.5: df.start validates the whole graph before writing anything; every error names the node's
 * path and carries a stable SQLSTATE (PF001 invalid graph, 54000 limits).
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

const TYPES = 'SQL, THEN, IF, JOIN, LOOP, BREAK, RACE, SLEEP, WAIT_SCHEDULE, HTTP, HTTP_MULTIPART, SIGNAL';
const PREFIX = 'Invalid durable function graph: ';
type Env = Record<string, unknown>;
const sql = (query: string): Env => ({ node_type: 'SQL', query });
const then = (l: Env, r: Env): Env => ({ node_type: 'THEN', left_node: l, right_node: r });
/** THEN nodes nested `levels` deep on the left: the deepest SQL node sits at depth `levels`. */
const chain = (levels: number): Env => {
  let env = sql('SELECT 0');
  for (let i = 1; i <= levels; i++) env = then(env, sql(`SELECT ${i}`));
  return env;
};
const join = (branches: number): Env => ({
  node_type: 'JOIN',
  left_node: sql('SELECT 0'),
  right_node: sql('SELECT 1'),
  extra_nodes: Array.from({ length: branches - 2 }, (_, i) => sql(`SELECT ${i + 2}`)),
});

async function startError(env: Env | string): Promise<{ code: string; message: string }> {
  const text = typeof env === 'string' ? env : JSON.stringify(env);
  try {
    await t.query('SELECT df.start($1)', [text]);
  } catch (e: any) {
    return { code: e.code, message: e.message };
  }
  throw new Error('df.start succeeded');
}

async function counts() {
  const [r] = await t.query(
    `SELECT (SELECT count(*)::int FROM df.instances) AS instances, (SELECT count(*)::int FROM df.nodes) AS nodes`,
  );
  return r;
}

describe('graph errors name the node path', () => {
  const cases: [string, Env, string][] = [
    [
      'unknown node_type below the root',
      then(sql('SELECT 1'), { node_type: 'NOPE' }),
      `root.right: Unknown node_type 'NOPE'. Valid types: ${TYPES}`,
    ],
    [
      'condition_node on a SQL node',
      then({ ...sql('SELECT 1'), condition_node: sql('SELECT true') }, sql('SELECT 2')),
      'root.left: condition_node is not valid for SQL nodes',
    ],
    [
      'condition_node on a JOIN',
      { node_type: 'JOIN', left_node: sql('a'), right_node: sql('b'), condition_node: sql('c') },
      'root: condition_node is not valid for JOIN nodes',
    ],
    [
      'extra_nodes on an IF',
      { node_type: 'IF', left_node: sql('t'), right_node: sql('e'), condition_node: sql('c'), extra_nodes: [sql('x')] },
      'root: extra_nodes is not valid for IF nodes',
    ],
    [
      'condition embedded in an IF query (legacy form)',
      { node_type: 'IF', left_node: sql('t'), right_node: sql('e'), query: '{"condition_node":{"node_type":"SQL","query":"c"}}' },
      'root: condition_node in IF must be a first-class Durofut field, not embedded in query',
    ],
    [
      'condition embedded in a LOOP query (legacy form)',
      then(sql('SELECT 1'), { node_type: 'LOOP', left_node: sql('b'), query: '{"condition_node":"x"}' }),
      'root.right: condition_node in LOOP must be a first-class Durofut field, not embedded in query',
    ],
    [
      'extras embedded in a JOIN query (legacy form)',
      { node_type: 'JOIN', left_node: sql('a'), right_node: sql('b'), query: '{"extra_nodes":[]}' },
      'root: extra_nodes in JOIN must be a first-class Durofut field, not embedded in query',
    ],
    [
      'a config query that is not a JSON object',
      { node_type: 'IF', left_node: sql('t'), right_node: sql('e'), condition_node: sql('c'), query: '[1]' },
      'root: query in IF must be a JSON config object',
    ],
    [
      'a child without node_type',
      then(sql('SELECT 1'), { query: 'SELECT 2' }),
      'root.right: failed to deserialize Durofut child: missing field `node_type`',
    ],
    [
      'a child whose query is not a string',
      then(sql('SELECT 1'), { node_type: 'SQL', query: 5 }),
      'root.right: failed to deserialize Durofut child: invalid type: integer `5`, expected a string',
    ],
    [
      'a child whose own children are not objects',
      then({ node_type: 'THEN', left_node: 'SELECT 1', right_node: sql('b') }, sql('c')),
      'root.left: failed to deserialize Durofut child: Durofut children must be JSON objects',
    ],
    [
      'a child whose condition_node is not an object',
      then(sql('a'), { node_type: 'IF', left_node: sql('t'), right_node: sql('e'), condition_node: 'SELECT true' }),
      'root.right: failed to deserialize Durofut child: condition_node must be a Durofut JSON object',
    ],
    [
      'a child whose extra_nodes hold a string',
      then(sql('a'), { node_type: 'JOIN', left_node: sql('l'), right_node: sql('r'), extra_nodes: ['SELECT 3'] }),
      'root.right: failed to deserialize Durofut child: extra_nodes entries must be Durofut JSON objects',
    ],
    [
      'a bad node under a condition',
      then({ node_type: 'IF', left_node: sql('t'), right_node: sql('e'), condition_node: { node_type: 'WHAT' } }, sql('x')),
      `root.left.condition_node: Unknown node_type 'WHAT'. Valid types: ${TYPES}`,
    ],
    [
      'a bad node among the extras',
      { node_type: 'JOIN', left_node: sql('a'), right_node: sql('b'), extra_nodes: [{ node_type: 'SQL', result_name: 7 }] },
      'root.extra_nodes[0]: failed to deserialize Durofut child: invalid type: integer `7`, expected a string',
    ],
  ];

  it.each(cases)('%s', async (_name, env, message) => {
    expect(await startError(env)).toEqual({ code: 'PF001', message: PREFIX + message });
  });

  it('an unparsable config query reports the JSON error', async () => {
    const e = await startError({ node_type: 'LOOP', left_node: sql('b'), condition_node: sql('c'), query: '{nope' });
    expect(e.code).toBe('PF001');
    expect(e.message).toMatch(/^Invalid durable function graph: root: query in LOOP must be valid JSON config: invalid input syntax for type json/);
  });

  it('the first error in walk order wins (left subtree before right)', async () => {
    const e = await startError(then(then(sql('a'), { node_type: 'X1' }), { node_type: 'X2' }));
    expect(e.message).toBe(`${PREFIX}root.left.right: Unknown node_type 'X1'. Valid types: ${TYPES}`);
  });

  it('a top-level unknown node_type is rejected by the strict parse (§1.4)', async () => {
    const e = await startError('{"node_type":"NOT_A_NODE"}');
    expect(e.message).toBe(`Invalid durable function: Unknown node_type 'NOT_A_NODE'. Valid types: ${TYPES}`);
    expect(await counts()).toEqual({ instances: 0, nodes: 0 });
  });

  it('nothing is inserted when validation fails', async () => {
    await startError(then(sql('SELECT 1'), { node_type: 'NOPE' }));
    expect(await counts()).toEqual({ instances: 0, nodes: 0 });
  });
});

describe('limits', () => {
  it('depth 256 is accepted, depth 257 is rejected with SQLSTATE 54000', async () => {
    const [{ id }] = await t.query('SELECT df.start($1) AS id', [JSON.stringify(chain(256))]);
    const [deep] = await t.query(
      `SELECT count(*)::int AS n FROM df.nodes WHERE instance_id = $1`, [id]);
    expect(deep.n).toBe(513);

    const e = await startError(chain(257));
    expect(e.code).toBe('54000');
    expect(e.message).toBe(
      `${PREFIX}root${'.left'.repeat(257)}: Graph exceeds maximum nesting depth of 256. Simplify the workflow or break it into multiple instances.`,
    );
    expect(await counts()).toEqual({ instances: 1, nodes: 513 });
  });

  it('10 000 nodes are accepted, 10 001 are rejected with SQLSTATE 54000', async () => {
    const [ok] = await t.query('SELECT count(*)::int AS n FROM df._flatten($1)', [JSON.stringify(join(9999))]);
    expect(ok.n).toBe(10000);

    const e = await startError(join(10000));
    expect(e).toEqual({
      code: '54000',
      message: `${PREFIX}root.extra_nodes[9997]: Workflow exceeds maximum node count of 10000. Simplify the workflow or break it into multiple instances.`,
    });
  });
});
