/**
 * DESIGN 7, issue 16 item 1: an outside transaction may lock an instance's rows in any order (an operator
 * repairing a run: the instance row, then its nodes, or the other way round) and is never the one
 * PostgreSQL aborts with "deadlock detected" because of the worker. The worker, holding its claimed node
 * row, takes the instance row only without waiting (SKIP LOCKED), or waiting while no session waits for it
 * and for less than deadlock_timeout; otherwise it gives its attempt up (55P03) and tries again.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { later, outcome, start } from '../helpers/engine.ts';
import { gate, waitUntilBlocked } from '../helpers/locks.ts';
import { createEngine } from '../../src/engine/engine.ts';
import type { RunKind } from '../../src/engine/engine.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';

const t = useTestDb();

function engineAs(app: string, points?: (p: string) => Promise<void> | void, max = 2) {
  const db = createPgDb({ connectionString: t.url(), max, applicationName: app });
  return { db, engine: createEngine({ db, points: points as never }) };
}

/** A session of the operator's, outside pgflare (the superuser, as someone repairing a run by hand). */
async function operator(app: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: t.url('postgres', 'postgres'), application_name: app });
  await c.connect();
  return c;
}

const code = (e: unknown) => (e as { code?: string }).code ?? String(e);

describe('lock order: outside transactions never deadlock with the worker', () => {
  it('an operator holding the instance row and waiting for the claimed node row is not aborted; the step retries and runs once', async () => {
    await t.query('CREATE TABLE effects (n int)');
    const id = await start(t, `'INSERT INTO effects VALUES (1)'`);
    const g = gate('after-claim');
    const w = engineAs('outside-a-worker', g.handler);
    const op = await operator('outside-a-op');
    try {
      const running = w.engine.runOnce(); // claims the instance's only row and parks holding it
      await g.arrived;
      await op.query('BEGIN');
      await op.query('UPDATE df.instances SET updated_at = now() WHERE id = $1', [id]);
      const nodes = op.query('UPDATE df.nodes SET updated_at = now() WHERE instance_id = $1', [id]).then(
        (r) => r.rowCount,
        (e: unknown) => code(e),
      );
      await waitUntilBlocked(t.superuser, 'outside-a-op'); // waits for the worker's node row
      g.release(); // the step runs, and its checkpoint needs the instance row the operator holds
      expect(await nodes).toBe(1); // not 40P01: the worker gave its row back
      await op.query('COMMIT');
      expect((await running)?.kind).toBe('contended');
      expect(await t.query('SELECT count(*)::int AS n FROM effects')).toEqual([{ n: 0 }]);
      // Stepped aside briefly; due again a moment later, it runs once.
      expect(await w.engine.drain({ now: later(1) })).toBe(1);
      expect((await outcome(t, id)).status).toBe('completed');
      expect(await t.query('SELECT count(*)::int AS n FROM effects')).toEqual([{ n: 1 }]);
    } finally {
      g.release();
      await op.end();
      await w.db.end();
    }
  });

  it('a worker waiting for the instance row gives up within half of deadlock_timeout: the operator, then waiting for its node row, is not aborted', async () => {
    await t.query('CREATE TABLE effects_b (n int)');
    const id = await start(t, `'INSERT INTO effects_b VALUES (1)'`);
    const g = gate('before-commit');
    const w = engineAs('outside-b-worker', g.handler);
    const op = await operator('outside-b-op');
    try {
      const running = w.engine.runOnce().then(
        (r) => r?.kind,
        (e: unknown) => code(e),
      );
      await g.arrived; // the step has run; its checkpoint's write goes with the commit
      await op.query('BEGIN');
      await op.query('UPDATE df.instances SET updated_at = now() WHERE id = $1', [id]);
      g.release();
      await waitUntilBlocked(t.superuser, 'outside-b-worker'); // no one waits for the worker: it waits, briefly
      const nodes = await op.query('UPDATE df.nodes SET updated_at = now() WHERE instance_id = $1', [id]).then(
        (r) => r.rowCount,
        (e: unknown) => code(e),
      );
      expect(nodes).toBe(1);
      await op.query('COMMIT');
      expect(await running).toBe('contended');
      expect(await t.query('SELECT count(*)::int AS n FROM effects_b')).toEqual([{ n: 0 }]);
      expect(await w.engine.drain({ now: later(1) })).toBe(1);
      expect((await outcome(t, id)).status).toBe('completed');
      expect(await t.query('SELECT count(*)::int AS n FROM effects_b')).toEqual([{ n: 1 }]);
    } finally {
      g.release();
      await op.end();
      await w.db.end();
    }
  });

  it('under load: raw updates in both orders, df.cancel and df.signal beside a busy worker see no deadlock; every instance completes once', async () => {
    const N = 200;
    await t.query('CREATE TABLE effects_c (k int)');
    await t.query('GRANT INSERT ON effects_c TO PUBLIC');
    const ids: string[] = [];
    for (let k = 0; k < N; k++) {
      ids.push(await start(t, `('INSERT INTO effects_c VALUES (${k})' & 'SELECT 2 AS b') ~> 'SELECT 3 AS c'`));
    }
    // Instances k % 6: 0, 1 updated instance → nodes; 2, 3 nodes → instance; 4 cancelled. Each raw order
    // has its own instances: two outside transactions in opposite orders on one instance would deadlock
    // with each other, which says nothing about the worker.
    const cancelled = new Set(ids.filter((_, k) => k % 6 === 4));
    const w = engineAs('outside-load-worker', undefined, 6);
    let done = false;
    const kinds: Record<string, number> = {};
    const errors: string[] = [];
    let outsideTx = 0;
    const sessions = await Promise.all(['i-n-0', 'i-n-1', 'n-i-2', 'n-i-3', 'cancel', 'signal'].map((s) => operator(`outside-load-${s}`)));
    const pick = (rem: number, i: number) => ids[(6 * ((i * 7) % Math.floor(N / 6)) + rem) % N];
    const raw = async (c: pg.Client, rem: number, instanceFirst: boolean) => {
      for (let i = 0; !done && i < 100_000; i++) {
        const id = pick(rem, i);
        try {
          await c.query('BEGIN');
          if (instanceFirst) {
            await c.query('UPDATE df.instances SET updated_at = now() WHERE id = $1', [id]);
            await c.query('UPDATE df.nodes SET updated_at = now() WHERE instance_id = $1', [id]);
          } else {
            await c.query('UPDATE df.nodes SET updated_at = now() WHERE instance_id = $1', [id]);
            await c.query('UPDATE df.instances SET updated_at = now() WHERE id = $1', [id]);
          }
          await c.query('COMMIT');
          outsideTx++;
        } catch (e) {
          errors.push(code(e));
          await c.query('ROLLBACK');
        }
      }
    };
    const outside = [
      raw(sessions[0], 0, true),
      raw(sessions[1], 1, true),
      raw(sessions[2], 2, false),
      raw(sessions[3], 3, false),
      (async () => {
        for (const id of cancelled) {
          try {
            await sessions[4].query('SELECT df.cancel($1)', [id]);
            outsideTx++;
          } catch (e) {
            errors.push(code(e));
          }
          if (done) break;
        }
      })(),
      (async () => {
        for (let i = 0; !done && i < 100_000; i++) {
          try {
            await sessions[5].query(`SELECT df.signal($1, 'nudge', '{}')`, [ids[(i * 13) % N]]);
            outsideTx++;
          } catch (e) {
            errors.push(code(e));
          }
        }
      })(),
    ];
    try {
      const terminal = async () =>
        (await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE status IN ('completed', 'failed', 'cancelled')`))[0].n as number;
      // The worker: four loops at once, each claim due "a second from now" so a row that stepped aside
      // is due again at once. Rounds until every instance is done, bounded.
      for (let round = 0; round < 200 && (await terminal()) < N; round++) {
        await Promise.all(
          Array.from({ length: 4 }, () =>
            w.engine.runSeries({
              now: later(1),
              onResult: (r) => {
                kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
              },
            }),
          ),
        );
      }
    } finally {
      done = true;
      await Promise.all(outside);
      await Promise.all(sessions.map((s) => s.end()));
      await w.db.end();
    }
    expect(errors).toEqual([]);
    expect(outsideTx).toBeGreaterThan(N);
    // The path was taken: attempts gave their rows back to outside transactions and ran again.
    expect(kinds.contended ?? 0).toBeGreaterThan(0);
    const status = new Map((await t.query<{ id: string; status: string }>('SELECT id, status FROM df.instances')).map((r) => [r.id, r.status]));
    const effects_c = new Map((await t.query<{ k: number; n: number }>('SELECT k, count(*)::int AS n FROM effects_c GROUP BY k')).map((r) => [r.k, r.n]));
    const rows = ids.map((id, k) => ({ id, status: status.get(id), n: effects_c.get(k) ?? 0 }));
    for (const r of rows) {
      if (cancelled.has(r.id)) {
        expect(['completed', 'cancelled']).toContain(r.status);
        expect(r.n).toBeLessThanOrEqual(1);
        if (r.status === 'completed') expect(r.n).toBe(1);
      } else {
        expect(r.status, r.id).toBe('completed');
        expect(r.n, r.id).toBe(1);
      }
    }
  });
});
