/**
 * The typed builder builds the same graphs as the SQL DSL, compared on the real database, and its
 * graphs start through df.start and run to completion in the engine.
 *
 * "The same" is checked twice: PostgreSQL's jsonb text of both (`(<dsl>)::jsonb::text` vs
 * `$1::jsonb::text`; jsonb orders object keys, which is fair, but leaves every string — SQL, HTTP
 * configs with their headers — byte for byte), and the raw text (`(<dsl>)::text` vs
 * `JSON.stringify(step)`), which the builder matches too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, outcome } from '../helpers/engine.ts';
import { CASES } from './builder-cases.ts';
import { EnvelopeSchema } from '../../src/graph/schema.ts';
import { breakLoop, http, join, loop, race, seq, sleep, sql, startQuery, waitForSchedule, waitForSignal, when, whenRows, type Closed, type Step } from '../../src/sdk/index.ts';

const t = useTestDb();
let c: pg.PoolClient;

beforeAll(async () => {
  c = await t.owner.connect();
  await c.query(`SET pg_durable.http_policy = 'all'`);
});
afterAll(() => c?.release());

describe('builder ↔ DSL', () => {
  it('has at least 40 cases and covers every node type, operator and option', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    const dsl = CASES.map(([, d]) => d).join('\n');
    for (const op of ['~>', '|=>', ' & ', ' | ', '?>', '!>', '@>', 'df.retry', 'df.timeout', 'df.join3', 'df.if_rows', 'df.break', 'df.http_multipart']) expect(dsl, op).toContain(op);
    const types = new Set<string>();
    const walk = (n: any) => {
      types.add(n.node_type);
      [n.left_node, n.right_node, n.condition_node, ...(n.extra_nodes ?? [])].forEach((x) => x && walk(x));
    };
    CASES.forEach(([, , build]) => walk(build().toGraph()));
    expect([...types].sort()).toEqual(['BREAK', 'HTTP', 'HTTP_MULTIPART', 'IF', 'JOIN', 'LOOP', 'RACE', 'SIGNAL', 'SLEEP', 'SQL', 'THEN', 'WAIT_SCHEDULE']);
  });

  it.each(CASES)('%s', async (_name, dsl, build) => {
    const step = build();
    const mine = JSON.stringify(step);
    const { rows } = await c.query(`SELECT (${dsl})::text AS raw, (${dsl})::jsonb::text AS canon, $1::jsonb::text AS mine`, [mine]);
    expect(rows[0].mine).toBe(rows[0].canon);
    expect(mine).toBe(rows[0].raw);
    EnvelopeSchema.parse(step.toGraph());
  });
});

describe('builder graphs start and run', () => {
  beforeAll(async () => {
    await t.query(`CREATE TABLE effects (tag text NOT NULL)`);
    await t.query(`GRANT ALL ON effects TO PUBLIC`);
  });

  it('df.start takes the JSON (with the label) and the engine runs it to completion', async () => {
    const wf = seq(
      sql(`SELECT generate_series(1, 3) AS i`).as('batch'),
      join(sql(`INSERT INTO effects SELECT 'row ' || i FROM $batch.* RETURNING 1`), sql(`INSERT INTO effects VALUES ('side') RETURNING 2`).retry({ maxAttempts: 2 }).timeout(5)),
      race(sql(`SELECT 'fast' AS won`), sleep('1 hour')).as('winner'),
      when(`SELECT count(*) = 4 FROM effects`, sql(`INSERT INTO effects VALUES ('then') RETURNING 1`), `SELECT 'else'`),
      loop(seq(`INSERT INTO effects VALUES ('loop')`, breakLoop('out'))),
      whenRows('batch', `SELECT $winner AS w`, `SELECT 0`),
    ).label('sdk-run');
    const { rows: [{ id }] } = await t.owner.query(startQuery(wf));
    await engineFor(t).drain();
    const done = await outcome(t, id);
    expect(done.status).toBe('completed');
    const [{ label }] = await t.query(`SELECT label FROM df.instances WHERE id = $1`, [id]);
    expect(label).toBe('sdk-run');
    const tags = (await t.query(`SELECT tag FROM effects ORDER BY tag`)).map((r) => r.tag);
    expect(tags).toEqual(['loop', 'row 1', 'row 2', 'row 3', 'side', 'then']);
  });

  it('a signal and a timer wait, then complete', async () => {
    const wf = seq(waitForSignal('go', { timeout: '1 hour' }).as('sig'), sleep(60), sql(`SELECT $sig AS got`));
    const [{ id }] = await t.query(`SELECT df.start($1) AS id`, [wf.toString()]);
    const e = engineFor(t);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('running');
    await t.query(`SELECT df.signal($1, 'go', '{"ok": true}')`, [id]);
    await e.drain();
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: new Date(Date.now() + 61_000) });
    expect((await outcome(t, id)).status).toBe('completed');
  });
});

describe('builder refusals, as the DSL refuses', () => {
  it.each([
    ['empty name', () => sql('SELECT 1').as(''), /cannot be empty/],
    ['bad name', () => sql('SELECT 1').as('1x'), /not a valid identifier/],
    ['retry of a sleep', () => sleep(1).retry({ maxAttempts: 2 }), /only SQL and HTTP steps/],
    ['retry attempts', () => sql('x').retry({ maxAttempts: 0 }), /between 1 and 1000/],
    ['timeout of HTTP', () => http({ url: 'https://e.com' }).timeout(1), /only SQL steps/],
    ['timeout zero', () => sql('x').timeout(0), /must be positive/],
    ['negative sleep', () => sleep(-1), /non-negative/],
    ['fractional sleep', () => sleep(1.5), /whole number/],
    ['bad duration', () => sleep('soon'), /not a duration/],
    ['bad cron', () => waitForSchedule('* * *'), /Invalid cron expression/],
    ['empty signal', () => waitForSignal(''), /cannot be empty/],
    ['bad method', () => http({ url: 'https://e.com', method: 'HEAD' as never }), /Invalid HTTP method/],
    ['join of one', () => (join as any)('SELECT 1'), /at least two/],
  ])('%s', (_n, f, message) => {
    expect(f).toThrow(message);
  });
});

describe('named results in the types', () => {
  it('knows what each step binds and reads', () => {
    const ok = seq(sql('SELECT 1 AS a').as('a'), sql('SELECT $a.x, $b').as('b'));
    const closedOk: Closed<typeof ok, 'b'> = ok; // $b is read before it is bound: given here.
    const fine = seq(sql('SELECT 1').as('batch'), 'SELECT * FROM $batch.*');
    const closed: Closed<typeof fine> = fine;
    // @ts-expect-error $nope is bound nowhere
    const unbound: Closed<Step<never, 'nope'>> = sql('SELECT $nope');
    const escaped: Closed<Step<never, never>> = sql('SELECT $tag$x$tag$').unchecked();
    const untyped: Closed<Step<any, any>> = sql('SELECT $whatever') as Step<any, any>;
    expect([closedOk, closed, unbound, escaped, untyped].every(Boolean)).toBe(true);
  });
});
