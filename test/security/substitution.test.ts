/**
 * Hostile values never change a statement's structure (issue 7 item 6). A value reaches a step through
 * a named result (`$a`, `$a.v`, `$a?`, from a user table or a signal's data); SQL mode quotes it as a
 * literal, so the step returns it byte for byte and the `victims` table is untouched. `{var}` is the
 * other way in, and by design (SPEC §4.1) it is a raw SQL fragment of the owner's own: the last test
 * pins that down so nobody mistakes it for quoting. HTTP (raw mode) refuses header values that would
 * split a header, before anything is sent.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome, start } from '../helpers/engine.ts';
import { executeHttpStep } from '../../src/engine/executors/http/index.ts';

const t = useTestDb();

/** One value per class of hostile input. PostgreSQL text cannot hold U+0000, so NUL comes as its JSON escape. */
const HOSTILE: Array<[string, string]> = [
  ['single quote', "'"],
  ['doubled quotes', "''"],
  ['quote and statement', "x'; DROP TABLE victims; --"],
  ['backslash', '\\'],
  ['backslash quote', "\\'"],
  ['trailing backslash', "abc\\"],
  ['E-string lookalike', "E'\\x41'"],
  ['dollar quote', '$$'],
  ['tagged dollar quote', '$t$; DROP TABLE victims; $t$'],
  ['positional parameter', '$1'],
  ['reference lookalike', '$a.v $a? $a.* {sys_instance_id}'],
  ['comment openers', '/* -- */ --'],
  ['semicolons and newlines', ';\n;\r\n;'],
  ['NUL escape text', '\\u0000'],
  ['unicode', 'é 😀 \u202e\u2028\u200d e\u0301 \uFEFF'],
  ['SQL fragment', "1) UNION SELECT usename FROM pg_user --"],
  ['JSON lookalike', '{"rows":[{"v":"x"}],"row_count":1}'],
  ['empty', ''],
  ['long', "'".repeat(5000)],
];

beforeAll(async () => {
  await t.query(`CREATE TABLE victims (id int); INSERT INTO victims VALUES (1), (2)`);
  await t.query(`CREATE TABLE hostile (k int PRIMARY KEY, v text)`);
  for (const [k, [, v]] of HOSTILE.entries()) await t.query('INSERT INTO hostile VALUES ($1, $2)', [k, v]);
});

async function victimsIntact() {
  expect(await t.query('SELECT count(*)::int AS n FROM victims')).toEqual([{ n: 2 }]);
}

describe('named results are quoted as literals (SQL mode)', () => {
  it.each(HOSTILE.map(([what], k) => [what, k] as const))('%s: $a, $a.v and $a? come back byte for byte', async (_what, k) => {
    const value = HOSTILE[k]![1];
    const id = await start(
      t,
      `'SELECT v FROM hostile WHERE k = ${k}' |=> 'a' ~> 'SELECT $a AS bare, $a.v AS col, $a? AS safe, length($a.v) AS len, (SELECT count(*) FROM victims) AS n'`,
    );
    await engineFor(t).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('completed');
    expect(o.result).toEqual({ rows: [{ bare: value, col: value, safe: value, len: [...value].length, n: 2 }], row_count: 1 });
    await victimsIntact();
  });

  it.each(HOSTILE.map(([what], k) => [what, k] as const))('%s: signal data reaches a step as a literal', async (_what, k) => {
    const value = HOSTILE[k]![1];
    const id = await start(t, `df.wait_for_signal('go') |=> 's' ~> 'SELECT $s.data::jsonb ->> ''v'' AS v, $s AS whole'`);
    const e = engineFor(t);
    await e.drain();
    await t.query(`SELECT df.signal($1, 'go', $2)`, [id, JSON.stringify({ v: value })]);
    // df.signal sets run_at = now() in microseconds; a drain in the same millisecond would not see it yet.
    await e.drain({ now: later(1) });
    const o = await outcome(t, id);
    expect(o.status, o.output ?? '').toBe('completed');
    const [row] = (o.result as { rows: Array<{ v: string; whole: string }> }).rows;
    expect(row.v).toBe(value);
    expect(JSON.parse(row.whole).data).toEqual({ v: value });
    await victimsIntact();
  });

  it('a NULL first column is SQL NULL with `?`, and an error without it (no text "NULL" spliced in)', async () => {
    const ok = await start(t, `'SELECT NULL::text AS v' |=> 'a' ~> 'SELECT $a? IS NULL AS is_null'`);
    const bad = await start(t, `'SELECT NULL::text AS v' |=> 'a' ~> 'SELECT $a AS v'`);
    await engineFor(t).drain();
    expect((await outcome(t, ok)).result).toEqual({ rows: [{ is_null: true }], row_count: 1 });
    const o = await outcome(t, bad);
    expect(o.status).toBe('failed');
    expect(o.output).toContain('$a is NULL');
  });
});

describe('{var} is a raw fragment of the owner (SPEC §4.1), not a literal', () => {
  it('a var holding SQL runs as SQL with the owner\'s own rights; quoted by hand it is data', async () => {
    await t.query(`SELECT df.setvar('frag', '(SELECT count(*) FROM victims)')`);
    await t.query(`SELECT df.setvar('lit', 'O''Brien')`);
    const raw = await start(t, `'SELECT {frag} AS n'`);
    await engineFor(t).drain();
    expect((await outcome(t, raw)).result).toEqual({ rows: [{ n: 2 }], row_count: 1 });
    // The same value through a named result stays text.
    const quoted = await start(t, `'SELECT ''(SELECT count(*) FROM victims)''::text AS v' |=> 'a' ~> 'SELECT $a AS v'`);
    await engineFor(t).drain();
    expect((await outcome(t, quoted)).result).toEqual({ rows: [{ v: '(SELECT count(*) FROM victims)' }], row_count: 1 });
    await t.query(`SELECT df.clearvars()`);
    await victimsIntact();
  });
});

describe('HTTP (raw mode)', () => {
  it.each([
    ['CRLF', 'x\r\nX-Injected: 1'],
    ['LF', 'x\nX-Injected: 1'],
    ['NUL', 'x\u0000y'],
  ])('a header value with %s from a named result fails the step and sends nothing', async (_what, value) => {
    let sent = 0;
    const out = await executeHttpStep({
      nodeType: 'HTTP',
      nodeId: 'n1',
      config: { url: 'https://api.corp.example/', method: 'GET', body: null, headers: { 'X-Value': '$a.v' }, timeout_seconds: 5 } as never,
      named: { a: JSON.stringify({ rows: [{ v: value }], row_count: 1 }) },
      vars: {},
      instanceId: 'deadbeef',
      label: null,
      idempotencyKey: 'k',
      policy: { mode: 'allowlist', allowedHosts: ['corp.example'] },
      canUseHttp: true,
      ownerRole: 'o',
      resolve: async () => ['93.184.215.14'],
      fetch: (async () => {
        sent++;
        return new Response('');
      }) as typeof fetch,
    });
    expect(out).toEqual({ ok: false, error: "HTTP request failed: https://api.corp.example/ - invalid header 'X-Value'" });
    expect(sent).toBe(0);
  });
});
