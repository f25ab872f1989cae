import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later, outcome, start } from '../helpers/engine.ts';

const t = useTestDb();

describe('retries and time-outs (beyond pg_durable)', () => {
  it('df.retry keeps pg_durable-shaped JSON: one extra "pgflare" key', async () => {
    const [r] = await t.query(`SELECT df.retry('SELECT 1', 3, 2) AS e`);
    expect(r.e).toBe('{"node_type":"SQL","query":"SELECT 1","pgflare":{"retry":{"max_attempts":3,"backoff_seconds":2,"max_backoff_seconds":300}}}');
    const [n] = await t.query(`SELECT df.retry('SELECT 1', 3) |=> 'x' AS e`);
    expect(JSON.parse(n.e)).toMatchObject({ result_name: 'x', pgflare: { retry: { max_attempts: 3 } } });
    await expect(t.query(`SELECT df.retry('SELECT 1', 0)`)).rejects.toMatchObject({ code: '22023' });
  });

  it('a failing step is retried with backoff until it succeeds; failed attempts are in the history', async () => {
    await t.query('CREATE SEQUENCE tries');
    const id = await start(t, `df.retry('SELECT 7 / greatest(nextval(''tries'') - 2, 0) AS v', 5, 1)`);
    const e = engineFor(t);
    let now = new Date();
    for (let i = 0; i < 6 && (await outcome(t, id)).status !== 'completed'; i++) {
      await e.drain({ now });
      now = later(5, now);
    }
    expect(await outcome(t, id)).toMatchObject({ status: 'completed', result: { rows: [{ v: 7 }] } });
    const events = await t.query(`SELECT kind, attempt, detail FROM df.instance_events($1) WHERE kind = 'attempt_failed'`, [id]);
    expect(events).toEqual([
      { kind: 'attempt_failed', attempt: 1, detail: 'SQL execution failed: error returned from database: division by zero' },
      { kind: 'attempt_failed', attempt: 2, detail: 'SQL execution failed: error returned from database: division by zero' },
    ]);
  });

  it('a retry is not due before its backoff', async () => {
    const id = await start(t, `df.retry('SELECT 1/0', 2, 60, 60)`);
    const e = engineFor(t);
    const now = new Date();
    await e.drain({ now });
    expect((await outcome(t, id)).status).toBe('running');
    await e.drain({ now: later(61, now) });
    expect((await outcome(t, id)).status).toBe('failed');
  });

  it('without df.retry a failure fails at once (pg_durable behaviour)', async () => {
    const id = await start(t, `'SELECT 1/0'`);
    await engineFor(t).drain();
    expect((await outcome(t, id)).status).toBe('failed');
  });

  it('df.timeout cancels a statement that runs too long', async () => {
    const id = await start(t, `df.timeout('SELECT pg_sleep(5)', 0.2)`);
    await engineFor(t).drain();
    const o = await outcome(t, id);
    expect(o.status).toBe('failed');
    expect(o.output).toBe('SQL execution failed: error returned from database: canceling statement due to statement timeout');
  });
});
