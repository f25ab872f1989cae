/**
 * DSL expression ↔ builder code: each pair must build the same graph (test/sdk/builder-dsl.test.ts).
 * Together they use every operator, every DSL function that builds a node, and every option.
 */
import {
  breakLoop,
  http,
  httpMultipart,
  join,
  loop,
  race,
  seq,
  sleep,
  sql,
  waitForSchedule,
  waitForSignal,
  when,
  whenRows,
  type Step,
} from '../../src/sdk/index.ts';

export const CASES: [name: string, dsl: string, built: () => Step<any, any>][] = [
  // single steps
  ['sql', `df.sql('SELECT 1 AS one')`, () => sql('SELECT 1 AS one')],
  ['sql with quotes, unicode and control characters', `df.sql(E'SELECT ''tab\\there'', ''é✓😀'', ''nl\\n'', ''\\x01''')`, () => sql(`SELECT 'tab\there', 'é✓😀', 'nl\n', '\x01'`)],
  ['hostile text', `'SELECT $$it''s "quoted" \\ {x} $1$$ AS t' |=> 'hostile_1'`, () => sql(`SELECT $$it's "quoted" \\ {x} $1$$ AS t`).as('hostile_1')],
  ['vars and sys names', `df.sql('SELECT ''{sys_instance_id}'', ''{sys_label}'', {limit}')`, () => sql(`SELECT '{sys_instance_id}', '{sys_label}', {limit}`)],
  ['sleep', `df.sleep(5)`, () => sleep(5)],
  ['sleep zero', `df.sleep(0)`, () => sleep(0)],
  ['sleep as text', `df.sleep(5400)`, () => sleep('1h 30 minutes')],
  ['schedule', `df.wait_for_schedule('*/5 * * * *')`, () => waitForSchedule('*/5 * * * *')],
  ['schedule with a year', `df.wait_for_schedule('0 9 * JAN,jul MON-fri 2099')`, () => waitForSchedule('0 9 * JAN,jul MON-fri 2099')],
  ['signal', `df.wait_for_signal('approve')`, () => waitForSignal('approve')],
  ['signal with time-out', `df.wait_for_signal('approve', 30)`, () => waitForSignal('approve', { timeout: 30 })],
  ['signal with time-out as text', `df.wait_for_signal('approve', 86400)`, () => waitForSignal('approve', { timeout: '1 day' })],
  ['break', `df.loop(df.break())`, () => loop(breakLoop())],
  ['break with JSON', `df.loop(df.break('{"a":1,"b":[true,null]}'))`, () => loop(breakLoop({ a: 1, b: [true, null] }))],

  // HTTP
  ['http get', `df.http('https://api.github.com/zen', 'GET')`, () => http({ url: 'https://api.github.com/zen', method: 'GET' })],
  ['http defaults', `df.http('https://example.com/in')`, () => http({ url: 'https://example.com/in' })],
  [
    'http post with everything',
    `df.http('https://example.com/hooks/{sys_instance_id}', 'post', '{"id": "$row.id"}', '{"Content-Type": "application/json", "X-Retry": 3}'::jsonb, 10)`,
    () => http({ url: 'https://example.com/hooks/{sys_instance_id}', method: 'post', body: '{"id": "$row.id"}', headers: { 'Content-Type': 'application/json', 'X-Retry': 3 }, timeout: 10 }),
  ],
  [
    'http headers in jsonb key order, nested, numbers',
    `df.http('https://example.com', 'PUT', NULL, '{"zz": {"b": 1.5, "a": [1e3, -0.25]}, "a": "x", "10": true, "é": null}'::jsonb, 120)`,
    () => http({ url: 'https://example.com', method: 'PUT', headers: { zz: { b: 1.5, a: [1000, -0.25] }, a: 'x', 10: true, é: null }, timeout: '2 minutes' }),
  ],
  ['http body from JSON', `df.http('https://example.com', 'PATCH', '{"a":1,"b":"two"}')`, () => http({ url: 'https://example.com', method: 'PATCH', body: { a: 1, b: 'two' } })],
  ['http delete', `df.http('https://example.com/x/1', 'DELETE')`, () => http({ url: 'https://example.com/x/1', method: 'DELETE' })],
  [
    'multipart',
    `df.http_multipart('https://example.com/upload', 'PUT', '[{"name": "file", "data_b64": "aGVsbG8=", "filename": "a.txt", "content_type": "text/plain"}, {"name": "note", "data_b64": "$note"}]'::jsonb, '{"Authorization": "Bearer x"}'::jsonb, 60)`,
    () =>
      httpMultipart({
        url: 'https://example.com/upload',
        method: 'PUT',
        parts: [{ name: 'file', data: 'hello', filename: 'a.txt', content_type: 'text/plain' }, { name: 'note', data_b64: '$note' }],
        headers: { Authorization: 'Bearer x' },
        timeout: 60,
      }),
  ],
  ['multipart defaults', `df.http_multipart('https://example.com/u', parts => '[{"name": "f", "data_b64": "AAEC/w=="}]')`, () => httpMultipart({ url: 'https://example.com/u', parts: [{ name: 'f', data: new Uint8Array([0, 1, 2, 255]) }] })],

  // sequencing and names
  ['sequence', `'SELECT 1' ~> 'SELECT 2' ~> 'SELECT 3'`, () => seq('SELECT 1', 'SELECT 2', 'SELECT 3')],
  ['sequence with andThen', `'SELECT 1' ~> 'SELECT 2' ~> 'SELECT 3'`, () => sql('SELECT 1').andThen('SELECT 2').andThen(sql('SELECT 3'))],
  ['sequence grouped right', `'SELECT 1' ~> ('SELECT 2' ~> 'SELECT 3')`, () => seq('SELECT 1', seq('SELECT 2', 'SELECT 3'))],
  ['df.seq', `df.seq(df.sql('SELECT 1'), 'SELECT 2')`, () => seq(sql('SELECT 1'), 'SELECT 2')],
  ['named results', `('SELECT 1 AS a' |=> 'a') ~> ('SELECT $a + 1 AS b' |=> 'b') ~> 'SELECT $a, $b'`, () => seq(sql('SELECT 1 AS a').as('a'), sql('SELECT $a + 1 AS b').as('b'), 'SELECT $a, $b')],
  ['df.as', `df.as('SELECT 42 AS answer', 'answer') ~> 'SELECT $answer'`, () => sql('SELECT 42 AS answer').as('answer').andThen('SELECT $answer')],
  ['name the sequence', `'SELECT 1' ~> 'SELECT 2' |=> 'x' ~> 'SELECT $x'`, () => seq('SELECT 1', 'SELECT 2').as('x').andThen('SELECT $x')],
  ['rename', `('SELECT 1' |=> 'a') |=> 'b'`, () => sql('SELECT 1').as('a').as('b')],
  ['row set', `('SELECT generate_series(1, 3) AS i' |=> 'batch') ~> 'SELECT sum(i) FROM $batch.*'`, () => sql('SELECT generate_series(1, 3) AS i').as('batch').andThen('SELECT sum(i) FROM $batch.*')],

  // parallelism
  ['join', `'SELECT 1 AS a' & 'SELECT 2 AS b'`, () => join('SELECT 1 AS a', 'SELECT 2 AS b')],
  ['df.join', `df.join('SELECT 1', df.sleep(1))`, () => join('SELECT 1', sleep(1))],
  ['df.join3', `df.join3('SELECT 1', 'SELECT 2', 'SELECT 3')`, () => join('SELECT 1', 'SELECT 2', 'SELECT 3')],
  ['& nests', `'SELECT 1' & 'SELECT 2' & 'SELECT 3'`, () => join(join('SELECT 1', 'SELECT 2'), 'SELECT 3')],
  [
    'four-way join (raw envelope)',
    `'{"node_type":"JOIN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"},"extra_nodes":[{"node_type":"SQL","query":"SELECT 3"},{"node_type":"SQL","query":"SELECT 4"}]}'`,
    () => join('SELECT 1', 'SELECT 2', 'SELECT 3', 'SELECT 4'),
  ],
  ['named join', `('SELECT 1 AS a' |=> 'a') & ('SELECT 2 AS b' |=> 'b') |=> 'pair'`, () => join(sql('SELECT 1 AS a').as('a'), sql('SELECT 2 AS b').as('b')).as('pair')],
  ['race', `'SELECT pg_sleep(1)' | 'SELECT 2'`, () => race('SELECT pg_sleep(1)', 'SELECT 2')],
  ['df.race', `df.race('SELECT 1', 'SELECT 2')`, () => race(sql('SELECT 1'), sql('SELECT 2'))],
  ['race of three', `'SELECT 1' | 'SELECT 2' | 'SELECT 3'`, () => race('SELECT 1', 'SELECT 2', 'SELECT 3')],
  ['race a signal against a timer', `df.race(df.wait_for_signal('done') |=> 'sig', df.sleep(30))`, () => race(waitForSignal('done').as('sig'), sleep('30s'))],

  // conditionals
  ['df.if', `df.if('SELECT true', 'SELECT 1', 'SELECT 2')`, () => when('SELECT true', 'SELECT 1', 'SELECT 2')],
  ['?> !>', `'SELECT count(*) > 0 FROM pg_class' ?> 'SELECT ''yes''' !> 'SELECT ''no'''`, () => when('SELECT count(*) > 0 FROM pg_class', `SELECT 'yes'`, `SELECT 'no'`)],
  ['if on a sequence', `'SELECT 1' ~> 'SELECT true' ?> 'SELECT 2' !> 'SELECT 3'`, () => when(seq('SELECT 1', 'SELECT true'), 'SELECT 2', 'SELECT 3')],
  ['named if', `df.if('SELECT false', 'SELECT 1', 'SELECT 2') |=> 'choice'`, () => when('SELECT false', 'SELECT 1', 'SELECT 2').as('choice')],
  ['df.if_rows', `('SELECT 1 WHERE false' |=> 'r') ~> df.if_rows('r', 'SELECT ''some''', 'SELECT ''none''')`, () => sql('SELECT 1 WHERE false').as('r').andThen(whenRows('r', `SELECT 'some'`, `SELECT 'none'`))],

  // loops
  ['@> with break', `@> ('SELECT 1' ~> df.break('done'))`, () => loop(seq('SELECT 1', breakLoop('done')))],
  ['break in an if', `df.loop(df.if('SELECT random() < 0.5', df.break('{"status": "done"}'), df.sleep(0)))`, () => loop(when('SELECT random() < 0.5', breakLoop('{"status": "done"}'), sleep(0)))],
  ['while loop', `df.loop('UPDATE counter SET n = n + 1 RETURNING n', 'SELECT n < 4 FROM counter')`, () => loop('UPDATE counter SET n = n + 1 RETURNING n', 'SELECT n < 4 FROM counter')],
  ['named loop', `df.loop(df.break('v'), 'SELECT false') |=> 'lv'`, () => loop(breakLoop('v'), sql('SELECT false')).as('lv')],
  ['loop between steps', `('SELECT 0 AS v' |=> 'first') ~> @> ('SELECT $first' ~> df.break()) ~> 'SELECT 1'`, () => seq(sql('SELECT 0 AS v').as('first'), loop(seq('SELECT $first', breakLoop())), 'SELECT 1')],
  ['join in a loop', `@> ((('SELECT 1 AS a' |=> 'a') & 'SELECT 2') ~> df.break('x'))`, () => loop(join(sql('SELECT 1 AS a').as('a'), 'SELECT 2').andThen(breakLoop('x')))],
  ['loop in a join', `df.join(df.loop(df.break('a')), 'SELECT 2')`, () => join(loop(breakLoop('a')), 'SELECT 2')],
  ['nested loops', `@> (@> (df.break('inner')) ~> df.break('outer'))`, () => loop(loop(breakLoop('inner')).andThen(breakLoop('outer')))],

  // retry and time-out options
  ['retry', `df.retry('SELECT 1', 3)`, () => sql('SELECT 1').retry({ maxAttempts: 3 })],
  ['retry with backoff', `df.retry(df.sql('SELECT 1'), 5, 0.5, 60)`, () => sql('SELECT 1').retry({ maxAttempts: 5, backoff: 0.5, maxBackoff: '1 minute' })],
  ['retry an HTTP step', `df.retry(df.http('https://example.com', 'GET'), 4, 2)`, () => http({ url: 'https://example.com', method: 'GET' }).retry({ maxAttempts: 4, backoff: '2s' })],
  ['retry a multipart step', `df.retry(df.http_multipart('https://example.com/u', 'POST', '[{"name": "f", "data_b64": "eA=="}]'), 2)`, () => httpMultipart({ url: 'https://example.com/u', parts: [{ name: 'f', data: 'x' }] }).retry({ maxAttempts: 2 })],
  ['timeout', `df.timeout('SELECT pg_sleep(10)', 2.5)`, () => sql('SELECT pg_sleep(10)').timeout(2.5)],
  ['timeout of a retried step', `df.timeout(df.retry('SELECT 1', 3), 10)`, () => sql('SELECT 1').retry({ maxAttempts: 3 }).timeout(10)],
  ['retry of a timed-out step', `df.retry(df.timeout('SELECT 1', 10), 3)`, () => sql('SELECT 1').timeout('10 seconds').retry({ maxAttempts: 3 })],
  ['retry again replaces', `df.retry(df.retry('SELECT 1', 3), 7, 1, 30)`, () => sql('SELECT 1').retry({ maxAttempts: 3 }).retry({ maxAttempts: 7, maxBackoff: 30 })],
  ['named after retry', `df.retry('SELECT 1 AS v', 2) |=> 'r'`, () => sql('SELECT 1 AS v').retry({ maxAttempts: 2 }).as('r')],
  ['retry after naming', `df.retry(df.as('SELECT 1 AS v', 'r'), 2) ~> 'SELECT $r'`, () => sql('SELECT 1 AS v').as('r').retry({ maxAttempts: 2 }).andThen('SELECT $r')],

  // everything at once
  [
    'kitchen sink',
    `('SELECT 1 AS id' |=> 'row') ~> df.join3(df.race(df.wait_for_signal('go', 5), df.sleep(1)), df.if_rows('row', df.loop(df.break('b'), 'SELECT false'), 'SELECT 0'), 'SELECT $row.id' ?> df.wait_for_schedule('* * * * *') !> df.retry('SELECT 2', 3)) |=> 'all'`,
    () =>
      sql('SELECT 1 AS id')
        .as('row')
        .andThen(
          join(
            race(waitForSignal('go', { timeout: 5 }), sleep(1)),
            whenRows('row', loop(breakLoop('b'), 'SELECT false'), 'SELECT 0'),
            when('SELECT $row.id', waitForSchedule('* * * * *'), sql('SELECT 2').retry({ maxAttempts: 3 })),
          ),
        )
        .as('all'),
  ],
];
