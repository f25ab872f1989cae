/**
 * A claim whose snapshot is older than the row it locks. Under READ COMMITTED, a claim that reaches a row
 * another transaction has changed and committed since the claim's snapshot locks the row's newest
 * version, while the instance and scope it joins are still read as of the snapshot. A one-step instance
 * whose first attempt failed with no backoff is such a row: its retry is ready at once, and a concurrent
 * claim can return it with the instance still 'pending' and no scope. Such a row is run, not withdrawn
 * (which left the instance stuck with its leaf running and no run_at).
 *
 * The window is made certain: the other session's claim (the prepared wake-up claim, whose filter calls
 * df._limits_in_force() after the snapshot is taken) waits on a lock on df.role_limits while the first
 * attempt commits.
 */
import { afterAll, expect, it } from 'vitest';
import pg from 'pg';
import { createContext } from '../../src/engine/context.ts';
import { beginAndClaim, prepareClaim } from '../../src/engine/queries/claim.ts';
import { stepOn } from '../../src/engine/step.ts';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, start } from '../helpers/engine.ts';

const t = useTestDb();
const clients: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
});

async function session(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: t.url() });
  await c.connect();
  clients.push(c);
  return c;
}

it('runs a retry that a concurrent claim locked after its snapshot, with the instance and scope read again', async () => {
  const retry = { maxAttempts: 2, baseMs: 0, maxMs: 0, jitter: 0 };
  const id = await start(t, `'SELECT 1/0 AS x'`);
  const holder = await session();
  const claimer = await session();
  const prepared = await prepareClaim(claimer);
  const [{ pid }] = (await claimer.query('SELECT pg_backend_pid() AS pid')).rows;

  const waiting = async (who: number) => {
    for (;;) {
      const [row] = await t.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [who]);
      if (row?.wait_event_type === 'Lock') return;
    }
  };
  const [{ pid: holderPid }] = (await holder.query('SELECT pg_backend_pid() AS pid')).rows;
  let locked: Promise<unknown> | undefined;
  let claim: ReturnType<typeof beginAndClaim> | undefined;
  const first = engineFor(t, {
    retry,
    // The first attempt has failed and its retry is written, not committed. Its claim read df.role_limits;
    // a lock request queued behind it makes the other claim, which takes its snapshot now, wait on
    // df.role_limits until after this commit.
    points: async (point) => {
      if (point !== 'before-commit' || claim) return;
      locked = holder.query('BEGIN; LOCK TABLE df.role_limits IN ACCESS EXCLUSIVE MODE');
      await waiting(holderPid);
      claim = beginAndClaim(claimer, new Date(Date.now() + 60_000), undefined, 0, prepared);
      await waiting(pid);
    },
  });
  const r = await first.runOnce();
  expect(r?.kind).toBe('retry');
  await locked;
  await holder.query('COMMIT');
  const rows = await claim!;

  // The path: the claim returned the retry (attempt 1 recorded) joined with what its snapshot saw.
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({ instance_id: id, attempts: 1, instance_status: 'pending', scope_status: null });
  expect(rows[0].stamp).not.toBeNull();

  // Run as the engine runs rows a claim took (the claim's transaction is open).
  const ctx = createContext({ db: t.db, retry });
  const out = await stepOn(ctx, claimer, new Date(), undefined, rows, null);
  expect(out.results.map((x) => x.kind)).toEqual(['step']);
  const [inst] = await t.query(`SELECT status FROM df.instances WHERE id = $1`, [id]);
  expect(inst.status).toBe('failed');
  const [node] = await t.query(`SELECT status, attempts, run_at FROM df.nodes WHERE instance_id = $1 AND id = (SELECT root_node FROM df.instances WHERE id = $1)`, [id]);
  expect(node).toMatchObject({ status: 'failed', attempts: 2, run_at: null });
});
