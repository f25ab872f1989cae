/**
 * SPEC §5.1 dry run: df.explain renders an envelope, a DSL expression or a plain SQL statement as a
 * tree without writing anything; bad input comes back as text, never as an error.
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();

type Env = Record<string, unknown>;
const sql = (query: string, result_name?: string): Env => ({ node_type: 'SQL', query, ...(result_name ? { result_name } : {}) });
const node = (node_type: string, config: unknown, result_name?: string): Env => ({
  node_type,
  query: typeof config === 'string' ? config : JSON.stringify(config),
  ...(result_name ? { result_name } : {}),
});
const then = (l: Env, r: Env): Env => ({ node_type: 'THEN', left_node: l, right_node: r });
const join = (l: Env, r: Env, ...extra: Env[]): Env => ({ node_type: 'JOIN', left_node: l, right_node: r, ...(extra.length ? { extra_nodes: extra } : {}) });
const race = (l: Env, r: Env, result_name?: string): Env => ({ node_type: 'RACE', left_node: l, right_node: r, ...(result_name ? { result_name } : {}) });
const iff = (c: Env, l: Env, r: Env): Env => ({ node_type: 'IF', left_node: l, right_node: r, condition_node: c });
const loop = (body: Env, cond?: Env): Env => ({ node_type: 'LOOP', left_node: body, ...(cond ? { condition_node: cond } : {}) });

async function explain(input: Env | string): Promise<string> {
  const [r] = await t.query('SELECT df.explain($1) AS x', [typeof input === 'string' ? input : JSON.stringify(input)]);
  return r.x;
}
/** The §5.1 layout: every line right-padded to (longest line in characters + 4), joined by \n. */
const pad = (lines: string[]) => {
  const width = Math.max(...lines.map((l) => [...l].length)) + 4;
  return lines.map((l) => l + ' '.repeat(width - [...l].length)).join('\n');
};

describe('the SPEC §5.1 example', () => {
  it('reproduces byte for byte', async () => {
    const env = then(sql('SELECT 1'), join(sql('SELECT a', 'x'), then(sql('SELECT b'), node('SLEEP', '2'))));
    const expected =
      'SQL: SELECT 1                    \n' +
      '→ JOIN (2)                       \n' +
      '    ║ branch 1:                  \n' +
      "      ├─SQL: SELECT a |=> 'x'    \n" +
      '    ║ branch 2:                  \n' +
      '      └─SQL: SELECT b            \n' +
      '      → SLEEP 2s                 ';
    const out = await explain(env);
    expect(out).toBe(expected);
    expect(Buffer.from(out).equals(Buffer.from(expected))).toBe(true);
  });
});

describe('labels', () => {
  const cases: [string, Env, string][] = [
    ['SQL', sql('SELECT 1'), 'SQL: SELECT 1'],
    ['named SQL', sql('SELECT 1', 'one'), "SQL: SELECT 1 |=> 'one'"],
    ['SQL longer than 50 bytes', sql('SELECT ' + 'x'.repeat(50)), 'SQL: SELECT ' + 'x'.repeat(40) + '...'],
    ['SQL of exactly 50 bytes', sql('SELECT ' + 'x'.repeat(43)), 'SQL: SELECT ' + 'x'.repeat(43)],
    // 'é' is 2 bytes: 46 ASCII bytes + é would end at byte 48, so the cut keeps 46 bytes.
    ['SQL cut in bytes on a character boundary', sql('x'.repeat(46) + 'éééé'), 'SQL: ' + 'x'.repeat(46) + '...'],
    ['SLEEP', node('SLEEP', '60'), 'SLEEP 60s'],
    ['named SLEEP', node('SLEEP', '5', 'nap'), "SLEEP 5s |=> 'nap'"],
    ['WAIT_SCHEDULE', node('WAIT_SCHEDULE', { cron_expr: '*/5 * * * *' }), "WAIT '*/5 * * * *'"],
    ['SIGNAL', node('SIGNAL', { signal_name: 'approve', timeout_seconds: null }), "SIGNAL 'approve'"],
    ['SIGNAL with timeout', node('SIGNAL', { signal_name: 'approve', timeout_seconds: 30 }, 'sig'), "SIGNAL 'approve' (30s) |=> 'sig'"],
    [
      'HTTP',
      node('HTTP', { url: 'https://api.github.com/zen', method: 'GET', body: null, headers: null, timeout_seconds: 30 }),
      'HTTP GET https://api.github.com/zen',
    ],
    [
      'HTTP with a long URL',
      node('HTTP', { url: 'https://example.com/' + 'a'.repeat(30), method: 'POST' }),
      'HTTP POST https://example.com/' + 'a'.repeat(17) + '...',
    ],
    ['HTTP without method', node('HTTP', { url: 'https://x.test/' }), 'HTTP POST https://x.test/'],
    ['HTTP with a config that is not JSON', node('HTTP', 'garbage'), 'HTTP ? ?'],
    [
      'HTTP_MULTIPART',
      node('HTTP_MULTIPART', { url: 'https://example.com/upload', method: 'PUT', parts: [], headers: null, timeout_seconds: 60 }, 'up'),
      "HTTP_MULTIPART PUT https://example.com/upload |=> 'up'",
    ],
    ['BREAK', node('BREAK', { break_value: null }), 'BREAK'],
    ['BREAK with a value', node('BREAK', { break_value: 'done' }), "BREAK 'done'"],
    ['BREAK with a long value', node('BREAK', { break_value: '{"status": "finished!"}' }), `BREAK '{"status": "finis...'`],
  ];
  it.each(cases)('%s', async (_name, env, label) => {
    expect(await explain(env)).toBe(pad([label]));
  });
});

describe('structure', () => {
  it('an infinite LOOP shows its body', async () => {
    expect(await explain(loop(sql('SELECT 1')))).toBe(pad(['LOOP (infinite)', '    ↻ body:', '      └─SQL: SELECT 1']));
  });

  it('a while LOOP shows body then condition; a named LOOP carries the name', async () => {
    expect(await explain({ ...loop(sql('SELECT 1'), sql('SELECT false')), result_name: 'lv' })).toBe(
      pad(["LOOP (while) |=> 'lv'", '    ↻ body:', '      └─SQL: SELECT 1', '    ? while:', '      └─SQL: SELECT false']),
    );
  });

  it('an IF shows condition, then and else', async () => {
    expect(await explain(iff(sql('SELECT true'), sql('SELECT 1'), sql('SELECT 2')))).toBe(
      pad(['IF', '    ? condition:', '      └─SQL: SELECT true', '    ✓ then:', '      └─SQL: SELECT 1', '    ✗ else:', '      └─SQL: SELECT 2']),
    );
  });

  it('an if_rows IF (no condition node) shows only then and else', async () => {
    const env = { node_type: 'IF', left_node: sql('a'), right_node: sql('b'), query: '{"condition_type":"result_has_rows","result_name":"r"}' };
    expect(await explain(env)).toBe(pad(['IF', '    ✓ then:', '      └─SQL: a', '    ✗ else:', '      └─SQL: b']));
  });

  it('a named RACE shows no name; branches get ├─ then └─', async () => {
    expect(await explain(race(sql('a'), sql('b'), 'winner'))).toBe(
      pad(['RACE', '    ║ branch 1:', '      ├─SQL: a', '    ║ branch 2:', '      └─SQL: b']),
    );
  });

  it('a JOIN counts and lists its extras after left and right', async () => {
    expect(await explain({ ...join(sql('a'), sql('b'), sql('c'), sql('d')), result_name: 'all' })).toBe(
      pad([
        "JOIN (4) |=> 'all'",
        '    ║ branch 1:', '      ├─SQL: a',
        '    ║ branch 2:', '      ├─SQL: b',
        '    ║ branch 3:', '      ├─SQL: c',
        '    ║ branch 4:', '      └─SQL: d',
      ]),
    );
  });

  it('a composite child that is not the last keeps a │ rail for its own children', async () => {
    expect(await explain(race(join(sql('a'), sql('b')), sql('c')))).toBe(
      pad([
        'RACE',
        '    ║ branch 1:',
        '      ├─JOIN (2)',
        '      │   ║ branch 1:',
        '      │     ├─SQL: a',
        '      │   ║ branch 2:',
        '      │     └─SQL: b',
        '    ║ branch 2:',
        '      └─SQL: c',
      ]),
    );
  });

  it('THEN chains flatten (left- or right-nested) and composite items indent their children by 4', async () => {
    const expected = pad([
      'SQL: SELECT 1',
      '→ IF',
      '    ? condition:',
      '      └─SQL: c',
      '    ✓ then:',
      '      └─SQL: t',
      '    ✗ else:',
      '      └─SQL: e',
      '→ SQL: SELECT 3',
    ]);
    const mid = iff(sql('c'), sql('t'), sql('e'));
    expect(await explain(then(then(sql('SELECT 1'), mid), sql('SELECT 3')))).toBe(expected);
    expect(await explain(then(sql('SELECT 1'), then(mid, sql('SELECT 3'))))).toBe(expected);
  });

  it('leaf items of a chain (SLEEP, WAIT, HTTP, HTTP_MULTIPART) add no child lines', async () => {
    const env = then(then(node('SLEEP', '1'), node('WAIT_SCHEDULE', { cron_expr: '* * * * *' })), node('HTTP_MULTIPART', { url: 'u', method: 'POST' }));
    expect(await explain(env)).toBe(pad(['SLEEP 1s', "→ WAIT '* * * * *'", '→ HTTP_MULTIPART POST u']));
  });

  it('a loop body that is a chain hangs under └─ with → continuations', async () => {
    expect(await explain(loop(then(sql('a'), node('BREAK', { break_value: 'x' }))))).toBe(
      pad(['LOOP (infinite)', '    ↻ body:', '      └─SQL: a', "      → BREAK 'x'"]),
    );
  });

  it('a SQL text with newlines is split into padded lines; trailing whitespace of the text is dropped', async () => {
    expect(await explain(sql('SELECT 1,\n       2   \n'))).toBe(pad(['SQL: SELECT 1,', '       2']));
  });
});

describe('input kinds', () => {
  it('plain SQL statements become one SQL node (keyword check is case-insensitive; input is trimmed)', async () => {
    expect(await explain('  select * from t  ')).toBe(pad(['SQL: select * from t']));
    expect(await explain('WITH\nx AS (SELECT 1) SELECT * FROM x')).toBe(pad(['SQL: WITH', 'x AS (SELECT 1) SELECT * FROM x']));
    expect(await explain('TRUNCATE t')).toBe(pad(['SQL: TRUNCATE t']));
  });

  it('anything else cannot be explained', async () => {
    const text =
      'Cannot explain input: not a valid Durofut JSON, instance ID, SQL statement, or DSL expression.\n' +
      'Hint: DSL expressions use df.*() functions and operators like ~>, |=>, &, |.';
    for (const input of ['VACUUM t', '{"a": 1}', "'a' & 'b'", 'SELECT\t1', 'abcdefg']) expect(await explain(input)).toBe(text);
  });

  it('validation errors come back as text', async () => {
    expect(await explain('{"node_type":"NOT_A_NODE"}')).toBe(
      "Invalid durable function graph: root: Unknown node_type 'NOT_A_NODE'. Valid types: SQL, THEN, IF, JOIN, LOOP, BREAK, RACE, SLEEP, WAIT_SCHEDULE, HTTP, HTTP_MULTIPART, SIGNAL",
    );
    let deep = sql('x');
    for (let i = 0; i < 257; i++) deep = then(deep, sql('y'));
    expect(await explain(deep)).toBe(
      `Invalid durable function graph: root${'.left'.repeat(257)}: Graph exceeds maximum nesting depth of 256. Simplify the workflow or break it into multiple instances.`,
    );
    expect(await explain(then(sql('a'), { node_type: 'SQL', query: 1 }))).toBe(
      'Invalid durable function graph: root.right: failed to deserialize Durofut child: invalid type: integer `1`, expected a string',
    );
  });

  it('expressions with DSL markers are evaluated as the caller', async () => {
    expect(await explain(`replace('{"node_type":"SQL","query":"@@"}', '@@', 'SELECT df.version()')`)).toBe(pad(['SQL: SELECT df.version()']));
    expect(await explain(`nullif('df.', 'df.')`)).toBe('Expression returned NULL');
    expect(await explain('df.no_such_function(1)')).toBe('Failed to evaluate expression: function df.no_such_function(integer) does not exist');
    expect(await explain(`'df.' || 'x'`)).toMatch(/^Failed to parse Durofut JSON: invalid input syntax for type json/);
    expect(await explain(`'{"df.": 1}'::text`)).toBe('Failed to parse Durofut JSON: missing field `node_type`');
  });

  it('an 8-hex-character input is an instance id, never a dry run', async () => {
    expect(await explain('  DEADBEEF ')).toBe("Instance 'DEADBEEF' not found");
  });

  it('is STRICT and writes nothing', async () => {
    expect(await t.query('SELECT df.explain(NULL) AS x')).toEqual([{ x: null }]);
    expect(await t.query('SELECT count(*)::int AS n FROM df.instances')).toEqual([{ n: 0 }]);
  });

  it('renders a 200-step chain and a 1002-node join quickly', async () => {
    let chain = sql('SELECT 1');
    for (let i = 2; i <= 200; i++) chain = then(chain, sql(`SELECT ${i}`));
    const out = await explain(chain);
    expect(out.split('\n').map((l) => l.trimEnd())).toEqual(Array.from({ length: 200 }, (_, i) => (i ? '→ ' : '') + `SQL: SELECT ${i + 1}`));
    const big = join(sql('SELECT 0'), sql('SELECT 1'), ...Array.from({ length: 999 }, (_, i) => sql(`SELECT ${i + 2}`)));
    const lines = (await explain(big)).split('\n');
    expect(lines).toHaveLength(1 + 2 * 1001);
    expect(lines[0].trimEnd()).toBe('JOIN (1001)');
    expect(lines.at(-1)!.trimEnd()).toBe('      └─SQL: SELECT 1000');
  });
});
