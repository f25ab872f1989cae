/**
 * Retries with no backoff in batches, on the claim's limited path (a role-level
 * pg_durable.max_user_connections of another role puts every claim on it): every instance ends, none is
 * left with its leaf running and no run_at.
 */
import { expect, it } from 'vitest';
import { useTestDb } from '../helpers/db.ts';
import { engineFor, later } from '../helpers/engine.ts';
const t = useTestDb();
it('retries with zero backoff in batches never leave a leaf running without run_at', async () => {
  // Scoped to this test's database, so other test files' claims are not put on the limited path.
  await t.superuser.query(`DROP ROLE IF EXISTS retry_zero_limited; CREATE ROLE retry_zero_limited; ALTER ROLE retry_zero_limited IN DATABASE ${t.name} SET pg_durable.max_user_connections = 5`);
  expect((await t.query(`SELECT df._limits_in_force() AS x`))[0].x).toBe(true);
  for (let round = 0; round < 6; round++) {
    await t.query(`SELECT df.start('SELECT ' || i || ' AS a' ~> 'SELECT 2 AS b') FROM generate_series(1, 60) i`);
    await t.query(`SELECT df.start('SELECT 1/0 AS ' || 'x' || i) FROM generate_series(1, 30) i`);
    const engine = engineFor(t, { batchSize: 16, retry: { maxAttempts: 2, baseMs: 0, maxMs: 0, jitter: 0 } });
    await engine.drain({ concurrency: 2 });
    // A checkpoint that met a row another series held steps its row aside 250 ms (stepAside): due later.
    await engine.drain({ concurrency: 2, now: later(1) });
    const stuck = await t.query(`SELECT n.instance_id, n.status, n.run_at FROM df.nodes n JOIN df.instances i ON i.id = n.instance_id WHERE i.status NOT IN ('completed','failed')`);
    expect(stuck, `round ${round}`).toEqual([]);
  }
  await t.superuser.query(`ALTER ROLE retry_zero_limited IN DATABASE ${t.name} RESET pg_durable.max_user_connections; DROP ROLE retry_zero_limited`);
});
