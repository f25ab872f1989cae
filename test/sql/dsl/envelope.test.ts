// SPEC §1.2/§1.3: the exact envelope text every DSL constructor returns.
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const one = async (sql: string, params?: unknown[]) => Object.values((await t.query(sql, params))[0])[0];

const S = (q: string) => `{"node_type":"SQL","query":${JSON.stringify(q)}}`;

describe('envelope text (§1.3)', () => {
  it('df.sql wraps the query', async () => {
    expect(await one(`SELECT df.sql('SELECT 1')`)).toBe('{"node_type":"SQL","query":"SELECT 1"}');
  });

  it('df.seq builds THEN with left then right', async () => {
    expect(await one(`SELECT df.seq('SELECT 1', 'SELECT 2')`)).toBe(
      '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"}}',
    );
  });

  it('df.as adds result_name last', async () => {
    expect(await one(`SELECT df.as('SELECT 1', 'a')`)).toBe('{"node_type":"SQL","query":"SELECT 1","result_name":"a"}');
  });

  it('df.as overwrites an existing result_name', async () => {
    expect(await one(`SELECT df.as(df.as('SELECT 1', 'a'), 'b')`)).toBe(
      '{"node_type":"SQL","query":"SELECT 1","result_name":"b"}',
    );
  });

  it('df.if puts condition_node after the branches', async () => {
    expect(await one(`SELECT df.if('c', 't', 'e')`)).toBe(
      `{"node_type":"IF","left_node":${S('t')},"right_node":${S('e')},"condition_node":${S('c')}}`,
    );
  });

  it('df.if_rows stores its config in query, name not validated', async () => {
    expect(await one(`SELECT df.if_rows('not a name!', 't', 'e')`)).toBe(
      `{"node_type":"IF","left_node":${S('t')},"right_node":${S('e')},` +
        `"query":"{\\"condition_type\\":\\"result_has_rows\\",\\"result_name\\":\\"not a name!\\"}"}`,
    );
  });

  it('df.join and df.race', async () => {
    expect(await one(`SELECT df.join('a', 'b')`)).toBe(`{"node_type":"JOIN","left_node":${S('a')},"right_node":${S('b')}}`);
    expect(await one(`SELECT df.race('a', 'b')`)).toBe(`{"node_type":"RACE","left_node":${S('a')},"right_node":${S('b')}}`);
  });

  it('df.join3 puts the third branch in extra_nodes', async () => {
    expect(await one(`SELECT df.join3('a', 'b', 'c')`)).toBe(
      `{"node_type":"JOIN","left_node":${S('a')},"right_node":${S('b')},"extra_nodes":[${S('c')}]}`,
    );
  });

  it('df.loop without and with a condition', async () => {
    expect(await one(`SELECT df.loop('a')`)).toBe(`{"node_type":"LOOP","left_node":${S('a')}}`);
    expect(await one(`SELECT df.loop('a', NULL)`)).toBe(`{"node_type":"LOOP","left_node":${S('a')}}`);
    expect(await one(`SELECT df.loop('a', 'c')`)).toBe(`{"node_type":"LOOP","left_node":${S('a')},"condition_node":${S('c')}}`);
  });

  it('df.break keeps its value as a literal JSON string', async () => {
    expect(await one(`SELECT df.break()`)).toBe('{"node_type":"BREAK","query":"{\\"break_value\\":null}"}');
    expect(await one(`SELECT df.break(NULL)`)).toBe('{"node_type":"BREAK","query":"{\\"break_value\\":null}"}');
    expect(await one(`SELECT df.break('done')`)).toBe('{"node_type":"BREAK","query":"{\\"break_value\\":\\"done\\"}"}');
    // Not auto-wrapped even when it looks like SQL or JSON.
    const r = await one(`SELECT df.break('{"status": "x"}')`);
    expect(JSON.parse(JSON.parse(r as string).query)).toEqual({ break_value: '{"status": "x"}' });
  });

  it('df.sleep stores the seconds as decimal text', async () => {
    expect(await one(`SELECT df.sleep(5)`)).toBe('{"node_type":"SLEEP","query":"5"}');
    expect(await one(`SELECT df.sleep(0)`)).toBe('{"node_type":"SLEEP","query":"0"}');
    expect(await one(`SELECT df.sleep(9000000000)`)).toBe('{"node_type":"SLEEP","query":"9000000000"}');
  });

  it('df.wait_for_schedule stores only the cron expression', async () => {
    expect(await one(`SELECT df.wait_for_schedule('*/5 * * * *')`)).toBe(
      '{"node_type":"WAIT_SCHEDULE","query":"{\\"cron_expr\\":\\"*/5 * * * *\\"}"}',
    );
  });

  it('df.wait_for_signal stores name and timeout (null when absent)', async () => {
    expect(await one(`SELECT df.wait_for_signal('go')`)).toBe(
      '{"node_type":"SIGNAL","query":"{\\"signal_name\\":\\"go\\",\\"timeout_seconds\\":null}"}',
    );
    expect(await one(`SELECT df.wait_for_signal('go', 5)`)).toBe(
      '{"node_type":"SIGNAL","query":"{\\"signal_name\\":\\"go\\",\\"timeout_seconds\\":5}"}',
    );
  });

  it('escapes strings like serde_json (quotes, backslashes, control characters; not unicode)', async () => {
    const q = 'SELECT \'a"b\\c\'\n\t\u0001 é ✓';
    const r = (await one(`SELECT df.sql($1)`, [q])) as string;
    expect(r).toBe('{"node_type":"SQL","query":"SELECT \'a\\"b\\\\c\'\\n\\t\\u0001 é ✓"}');
    expect(JSON.parse(r).query).toBe(q);
  });

  it('embeds children verbatim, including whitespace inside them', async () => {
    const child = '{"node_type":"THEN","left_node":{ "node_type" : "SQL", "query" : "a" },"right_node":{"node_type":"SQL","query":"b"}}';
    expect(await one(`SELECT df.seq($1, 'c')`, [child])).toBe(`{"node_type":"THEN","left_node":${child},"right_node":${S('c')}}`);
  });

  it('re-serialises the top level of an ensured envelope canonically (order, spacing, unknown keys)', async () => {
    const messy = '  {"result_name": "r", "query": "q", "x": [1], "node_type": "SQL", "left_node": null}  ';
    expect(await one(`SELECT df.seq($1, 'c')`, [messy])).toBe(
      `{"node_type":"THEN","left_node":{"node_type":"SQL","query":"q","result_name":"r"},"right_node":${S('c')}}`,
    );
  });

  it('orders all seven keys as §1.3 says, whatever the input order', async () => {
    const raw = `{"result_name":"r","query":"{}","extra_nodes":[${S('x')}],"condition_node":${S('c')},"right_node":${S('b')},"left_node":${S('a')},"node_type":"JOIN"}`;
    expect(await one(`SELECT df.seq($1, 'z')`, [raw])).toBe(
      `{"node_type":"THEN","left_node":{"node_type":"JOIN","left_node":${S('a')},"right_node":${S('b')},"condition_node":${S('c')},` +
        `"extra_nodes":[${S('x')}],"query":"{}","result_name":"r"},"right_node":${S('z')}}`,
    );
  });

  it('drops an empty extra_nodes array and null children', async () => {
    const raw = '{"node_type":"JOIN","left_node":{"node_type":"SQL","query":"a"},"right_node":{"node_type":"SQL","query":"b"},"extra_nodes":[],"condition_node":null,"query":null}';
    expect(await one(`SELECT df.as($1, 'j')`, [raw])).toBe(
      `{"node_type":"JOIN","left_node":${S('a')},"right_node":${S('b')},"result_name":"j"}`,
    );
  });

  it('keeps raw JSON joins with any number of extra_nodes', async () => {
    const raw = `{"node_type":"JOIN","left_node":${S('a')},"right_node":${S('b')},"extra_nodes":[${S('c')}, ${S('d')},${S('e')}]}`;
    expect(await one(`SELECT df.as($1, 'j')`, [raw])).toBe(
      `{"node_type":"JOIN","left_node":${S('a')},"right_node":${S('b')},"extra_nodes":[${S('c')},${S('d')},${S('e')}],"result_name":"j"}`,
    );
  });

  it('identical input gives byte-identical output (test 09)', async () => {
    const e = `'SELECT 1' |=> 'a' ~> df.join3(df.sleep(1), df.wait_for_signal('s', 3), df.loop(df.break('v'), 'w')) ~> ('c' ?> 't' !> df.if_rows('a', 'x', 'y'))`;
    const [r] = await t.query(`SELECT ${e} AS a, ${e} AS b`);
    const [r2] = await t.query(`SELECT ${e} AS a`);
    expect(r.a).toBe(r.b);
    expect(r2.a).toBe(r.a);
    expect(JSON.parse(r.a).node_type).toBe('THEN');
  });

  it('a 200-step chain stays valid JSON of the expected depth', async () => {
    const [r] = await t.query(`
      WITH RECURSIVE c(i, e) AS (SELECT 1, df.sql('SELECT 1') UNION ALL SELECT i + 1, df.seq(e, 'SELECT ' || (i + 1)) FROM c WHERE i < 200)
      SELECT e FROM c WHERE i = 200`);
    let node = JSON.parse(r.e);
    let depth = 0;
    while (node.node_type === 'THEN') {
      expect(node.right_node.query).toBe(`SELECT ${200 - depth}`);
      node = node.left_node;
      depth++;
    }
    expect(depth).toBe(199);
    expect(node).toEqual({ node_type: 'SQL', query: 'SELECT 1' });
  });
});
