/**
 * Named fixture workflows, as SQL DSL expressions (use them as `SELECT <fixture>` or
 * `SELECT df.start(<fixture>)`). Together they cover every node type, every DSL function that builds
 * a node, and every operator (`~>`, `|=>`, `&`, `|`, `?>`, `!>`, `@>`). Fixtures reading user tables
 * name them but never need them to exist until a worker runs the step.
 *
 * HTTP fixtures (`df.http…`) need `SET pg_durable.http_policy = 'all'` (or another enabled policy)
 * on the connection that evaluates them; see `needsHttp`.
 */
export const FIXTURES: Record<string, string> = {
  // single steps
  sql: `df.sql('SELECT 1 AS one')`,
  sleep: `df.sleep(5)`,
  sleep_zero: `df.sleep(0)`,
  schedule: `df.wait_for_schedule('*/5 * * * *')`,
  schedule_with_year: `df.wait_for_schedule('0 9 * JAN,jul MON-fri 2099')`,
  signal: `df.wait_for_signal('approve')`,
  http_get: `df.http('https://api.github.com/zen', 'GET')`,
  http_post: `df.http('https://example.com/hooks/{sys_instance_id}', 'post', '{"id": "$row.id"}', '{"Content-Type": "application/json", "X-Retry": 3}'::jsonb, 10)`,
  http_multipart: `df.http_multipart('https://example.com/upload', 'PUT', '[{"name": "file", "data_b64": "aGVsbG8=", "filename": "a.txt", "content_type": "text/plain"}, {"name": "note", "data_b64": "$note"}]'::jsonb, '{"Authorization": "Bearer x"}'::jsonb, 60)`,

  // sequencing and names
  sequence: `'SELECT 1' ~> 'SELECT 2' ~> 'SELECT 3'`,
  seq_fn: `df.seq(df.sql('SELECT 1'), 'SELECT 2')`,
  named_results: `('SELECT 1 AS a' |=> 'a') ~> ('SELECT $a + 1 AS b' |=> 'b') ~> 'SELECT $a, $b'`,
  as_fn: `df.as('SELECT 42 AS answer', 'answer') ~> 'SELECT $answer'`,
  name_the_sequence: `'SELECT 1' ~> 'SELECT 2' |=> 'x' ~> 'SELECT $x'`,
  row_set: `('SELECT generate_series(1, 3) AS i' |=> 'batch') ~> 'SELECT sum(i) FROM $batch.*'`,
  vars_and_sys: `df.sql('SELECT ''{sys_instance_id}'', ''{sys_label}'', {limit}')`,
  hostile_text: `'SELECT $$it''s "quoted" \\ {x} $1$$ AS t' |=> 'hostile_1'`,

  // parallelism
  join: `'SELECT 1 AS a' & 'SELECT 2 AS b'`,
  join_fn: `df.join('SELECT 1', 'SELECT 2')`,
  join3: `df.join3('SELECT 1', 'SELECT 2', 'SELECT 3')`,
  join_raw_four_way: `'{"node_type":"JOIN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"},"extra_nodes":[{"node_type":"SQL","query":"SELECT 3"},{"node_type":"SQL","query":"SELECT 4"}]}'`,
  named_join: `('SELECT 1 AS a' |=> 'a') & ('SELECT 2 AS b' |=> 'b') |=> 'pair'`,
  race: `'SELECT pg_sleep(1)' | 'SELECT 2'`,
  race_fn: `df.race('SELECT 1', 'SELECT 2')`,
  race_with_timeout: `df.race(df.wait_for_signal('done') |=> 'sig', df.sleep(30))`,

  // conditionals
  if_fn: `df.if('SELECT true', 'SELECT 1', 'SELECT 2')`,
  if_else_ops: `'SELECT count(*) > 0 FROM pg_class' ?> 'SELECT ''yes''' !> 'SELECT ''no'''`,
  if_sequence_condition: `'SELECT 1' ~> 'SELECT true' ?> 'SELECT 2' !> 'SELECT 3'`,
  named_if: `df.if('SELECT false', 'SELECT 1', 'SELECT 2') |=> 'choice'`,
  if_rows: `('SELECT 1 WHERE false' |=> 'r') ~> df.if_rows('r', 'SELECT ''some''', 'SELECT ''none''')`,

  // loops
  loop_with_break: `@> ('SELECT 1' ~> df.break('done'))`,
  loop_break_in_if: `df.loop(df.if('SELECT random() < 0.5', df.break('{"status": "done"}'), df.sleep(0)))`,
  loop_break_null: `df.loop(df.break())`,
  while_loop: `df.loop('UPDATE counter SET n = n + 1 RETURNING n', 'SELECT n < 4 FROM counter')`,
  named_loop: `df.loop(df.break('v'), 'SELECT false') |=> 'lv'`,
  loop_prefix_suffix: `('SELECT 0 AS v' |=> 'first') ~> @> ('SELECT $first' ~> df.break()) ~> 'SELECT 1'`,
  nested_join_in_loop: `@> ((('SELECT 1 AS a' |=> 'a') & 'SELECT 2') ~> df.break('x'))`,
  loop_in_join: `df.join(df.loop(df.break('a')), 'SELECT 2')`,
  nested_loops: `@> (@> (df.break('inner')) ~> df.break('outer'))`,
  signal_with_timeout: `(df.wait_for_signal('approve', 30) |=> 'sig') ~> 'SELECT $sig::jsonb->>''timed_out'''`,

  // everything at once
  kitchen_sink: `('SELECT 1 AS id' |=> 'row') ~> df.join3(df.race(df.wait_for_signal('go', 5), df.sleep(1)), df.if_rows('row', df.loop(df.break('b'), 'SELECT false'), 'SELECT 0'), 'SELECT $row.id' ?> df.wait_for_schedule('* * * * *') !> 'SELECT 2') |=> 'all'`,
};

/** Fixtures that call df.http / df.http_multipart, which need an HTTP policy other than `disabled`. */
export function needsHttp(fixture: string): boolean {
  return fixture.includes('df.http');
}
