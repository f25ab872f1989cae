/**
 * SPEC §1.5: df.start writes one df.nodes row per envelope node, pre-order, with composite children
 * referenced by id (condition/extras merged into the query JSON) and the instance pointing at the root.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

type Env = Record<string, unknown>;
const sql = (query: string, result_name?: string): Env => ({ node_type: 'SQL', query, ...(result_name ? { result_name } : {}) });
const then = (l: Env, r: Env): Env => ({ node_type: 'THEN', left_node: l, right_node: r });

async function start(env: Env | string, ...args: unknown[]): Promise<string> {
  const text = typeof env === 'string' ? env : JSON.stringify(env);
  const params = [text, ...args];
  const [{ id }] = await t.query(`SELECT df.start(${params.map((_, i) => `$${i + 1}`).join(', ')}) AS id`, params);
  return id;
}

const nodesOf = (id: string) =>
  t.query(
    `SELECT n.id, n.node_type, n.query, n.result_name, n.left_node, n.right_node, n.status, n.submitted_by::text AS submitted_by
       FROM df.nodes n WHERE n.instance_id = $1`,
    [id],
  );

describe('rows', () => {
  it('an IF with a condition: ids wired, condition merged into the query, instance points at the root', async () => {
    const id = await start({
      node_type: 'IF',
      left_node: sql('SELECT 1', 'yes'),
      right_node: sql('SELECT 2'),
      condition_node: sql('SELECT true'),
      result_name: 'choice',
    });
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    const rows = await nodesOf(id);
    expect(rows).toHaveLength(4);
    const [inst] = await t.query(`SELECT root_node, status, label FROM df.instances WHERE id = $1`, [id]);
    const root = rows.find((r) => r.id === inst.root_node)!;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const cond = JSON.parse(root.query).condition_node;
    expect(root).toMatchObject({ node_type: 'IF', result_name: 'choice', status: 'pending', submitted_by: 'pgflare_owner' });
    expect(root.query).toBe(`{"condition_node":"${cond}"}`);
    expect(byId.get(root.left_node)).toMatchObject({ node_type: 'SQL', query: 'SELECT 1', result_name: 'yes' });
    expect(byId.get(root.right_node)).toMatchObject({ node_type: 'SQL', query: 'SELECT 2', result_name: null });
    expect(byId.get(cond)).toMatchObject({ node_type: 'SQL', query: 'SELECT true' });
    expect(inst).toEqual({ root_node: root.id, status: 'pending', label: null });
  });

  it('existing config keys come first when a condition is merged (if_rows-style query kept verbatim)', async () => {
    const id = await start({
      node_type: 'LOOP',
      left_node: sql('SELECT 1'),
      condition_node: sql('SELECT false'),
      query: '{"note":"keep","n":1}',
    });
    const rows = await nodesOf(id);
    const loop = rows.find((r) => r.node_type === 'LOOP')!;
    const cond = rows.find((r) => r.query === 'SELECT false')!;
    expect(loop.query).toBe(`{"note":"keep","n":1,"condition_node":"${cond.id}"}`);

    const id2 = await start({
      node_type: 'IF',
      left_node: sql('t'),
      right_node: sql('e'),
      query: '{"condition_type":"result_has_rows","result_name":"r"}',
    });
    const [ifRow] = (await nodesOf(id2)).filter((r) => r.node_type === 'IF');
    expect(ifRow.query).toBe('{"condition_type":"result_has_rows","result_name":"r"}');
  });

  it('query strings are stored exactly as written (whitespace, quotes, unicode, braces)', async () => {
    const q = `SELECT  $$it's "x" \\ {v} $1$$ , 'ü'\n  FROM t`;
    const id = await start(then(sql(q), sql('SELECT 2')));
    const rows = await nodesOf(id);
    expect(rows.map((r) => r.query).sort()).toEqual([null, 'SELECT 2', q].sort());
  });

  it('a 1002-node JOIN (raw JSON extras) inserts every branch, extras in order', async () => {
    const env = {
      node_type: 'JOIN',
      left_node: sql('SELECT 0'),
      right_node: sql('SELECT 1'),
      extra_nodes: Array.from({ length: 999 }, (_, i) => sql(`SELECT ${i + 2}`)),
    };
    const id = await start(env);
    const [r] = await t.query(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM df.nodes WHERE instance_id = $1`, [id]);
    expect(r).toEqual({ n: 1002, ids: 1002 });
    const [order] = await t.query(
      `SELECT array_agg(x.query ORDER BY x.k) = ARRAY(SELECT 'SELECT ' || g FROM generate_series(2, 1000) g) AS ok
         FROM df.nodes j,
              LATERAL jsonb_array_elements_text(j.query::jsonb -> 'extra_nodes') WITH ORDINALITY e(eid, k)
              JOIN LATERAL (SELECT n.query, e.k FROM df.nodes n WHERE n.instance_id = $1 AND n.id = e.eid) x ON true
        WHERE j.instance_id = $1 AND j.node_type = 'JOIN'`,
      [id],
    );
    expect(order.ok).toBe(true);
  });

  it('200 chained seq steps give 399 rows, pre-order, with the 200 steps in order', async () => {
    let env = sql('SELECT 1');
    for (let i = 2; i <= 200; i++) env = then(env, sql(`SELECT ${i}`));
    const started = Date.now();
    const id = await start(env);
    expect(Date.now() - started).toBeLessThan(5000);
    const rows = await nodesOf(id);
    expect(rows).toHaveLength(399);
    expect(rows.filter((r) => r.node_type === 'THEN')).toHaveLength(199);
    // Walk the THEN tree from the root: left before right yields the steps in order.
    const [inst] = await t.query(`SELECT root_node FROM df.instances WHERE id = $1`, [id]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const order: string[] = [];
    const stack = [inst.root_node];
    while (stack.length) {
      const n = byId.get(stack.pop())!;
      if (n.node_type === 'THEN') stack.push(n.right_node, n.left_node);
      else order.push(n.query);
    }
    expect(order).toEqual(Array.from({ length: 200 }, (_, i) => `SELECT ${i + 1}`));
  });

  it('df._flatten returns pre-order rows with parent, depth and path', async () => {
    const rows = await t.query(
      `SELECT ord, node_type, query, depth, path, parent_id IS NULL AS orphan FROM df._flatten($1) ORDER BY ord`,
      [JSON.stringify({
        node_type: 'JOIN',
        left_node: then(sql('a'), sql('b')),
        right_node: sql('c'),
        extra_nodes: [sql('d')],
      })],
    );
    expect(rows.map((r) => [r.ord, r.node_type, r.depth, r.path, r.orphan])).toEqual([
      [1, 'JOIN', 0, 'root', true],
      [2, 'THEN', 1, 'root.left', false],
      [3, 'SQL', 2, 'root.left.left', false],
      [4, 'SQL', 2, 'root.left.right', false],
      [5, 'SQL', 1, 'root.right', false],
      [6, 'SQL', 1, 'root.extra_nodes[0]', false],
    ]);
  });

  it('a plain SQL string becomes one SQL node', async () => {
    const id = await start('SELECT 42');
    expect((await nodesOf(id)).map((r) => [r.node_type, r.query])).toEqual([['SQL', 'SELECT 42']]);
  });
});
