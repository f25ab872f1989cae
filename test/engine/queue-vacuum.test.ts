/**
 * The queue vacuum (src/engine/queue-vacuum.ts): an engine with `queueVacuumSteps` vacuums df.nodes in
 * the background after that many steps, one vacuum at a time; without it, never; a role that does not
 * own df.nodes never tries (VACUUM would only warn and skip the table).
 */
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { serverUntil } from '../helpers/until.ts';
import { engineFor } from '../helpers/engine.ts';
import { createPgDb } from '../../src/runtime/node/pg-db.ts';
import { createQueueVacuum } from '../../src/engine/queue-vacuum.ts';
import type { Logger } from '../../src/log.ts';

const t = useTestDb();

const startMany = (n: number) => t.query(`SELECT df.start('SELECT 1') FROM generate_series(1, $1)`, [n]);

/** VACUUMs of df.nodes so far, from the server's statistics (vacuum and autovacuum apart). */
async function vacuumCount(): Promise<{ manual: number; auto: number }> {
  const [r] = await t.superuser.query(
    `SELECT pg_stat_get_vacuum_count('df.nodes'::regclass)::int AS manual, pg_stat_get_autovacuum_count('df.nodes'::regclass)::int AS auto`,
  ).then((x) => x.rows);
  return r;
}

/**
 * Before PostgreSQL 15 a VACUUM reaches the statistics through the stats collector process, and a
 * reader sees its file up to 500 ms old: wait (on the server, bounded) until `manual` VACUUMs are counted.
 * From 15 on the count is current at once.
 */
async function countedVacuums(manual: number): Promise<void> {
  await serverUntil(async (text) => (await t.superuser.query(text)).rows, `pg_stat_get_vacuum_count('df.nodes'::regclass) >= ${manual}`, 300);
}

describe('queue vacuum', () => {
  it('after every N steps, in the background: the server counts the vacuums the engine reports', async () => {
    const before = await vacuumCount();
    await startMany(30);
    const engine = engineFor(t, { queueVacuumSteps: 10 });
    expect(await engine.drain({ concurrency: 2 })).toBe(30);
    await engine.settled();
    const { vacuums } = engine.stats();
    // At least the one the tenth step started; more when the pause after it (≥ 1 s) had passed.
    expect(vacuums).toBeGreaterThanOrEqual(1);
    expect(vacuums).toBeLessThanOrEqual(3);
    await countedVacuums(before.manual + vacuums);
    expect((await vacuumCount()).manual - before.manual).toBe(vacuums);
    expect(await t.query(`SELECT count(*)::int AS n FROM df.instances WHERE status = 'completed'`)).toEqual([{ n: 30 }]);
  });

  it('off by default in the engine (the Node worker turns it on)', async () => {
    const before = await vacuumCount();
    await startMany(20);
    const engine = engineFor(t);
    expect(await engine.drain()).toBe(20);
    await engine.settled();
    expect(engine.stats().vacuums).toBe(0);
    expect((await vacuumCount()).manual).toBe(before.manual);
  });

  it('a role that does not own df.nodes never sends VACUUM', async () => {
    const role = t.role('qv_other');
    await t.superuser.query(`CREATE ROLE ${role} LOGIN PASSWORD 'qv'`);
    await t.query('SELECT df.grant_usage($1)', [role]);
    const db = createPgDb({ connectionString: t.url(role, 'qv'), max: 1 });
    const lines: string[] = [];
    const log: Logger = { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
    try {
      const before = await vacuumCount();
      const qv = createQueueVacuum(db, log, { everySteps: 1 });
      qv.stepDone();
      await qv.settled();
      qv.stepDone();
      await qv.settled();
      expect(qv.stats()).toEqual({ vacuums: 0, off: true });
      expect(lines).toEqual([expect.stringMatching(/queue vacuum off: this role does not own df.nodes/)]);
      expect((await vacuumCount()).manual).toBe(before.manual);
    } finally {
      await db.end();
    }
  });
});
