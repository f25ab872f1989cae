/**
 * SPEC §5.0 / DESIGN decision 4: df.start writes in the caller's transaction and makes the instance
 * claimable (root node due now, NOTIFY pgflare_ready delivered at commit).
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const THEN = '{"node_type":"THEN","left_node":{"node_type":"SQL","query":"SELECT 1"},"right_node":{"node_type":"SQL","query":"SELECT 2"}}';

const counts = async () =>
  (await t.query(`SELECT (SELECT count(*)::int FROM df.instances) AS instances, (SELECT count(*)::int FROM df.nodes) AS nodes`))[0];

/** A client LISTENing on pgflare_ready; `next(ms)` resolves with the payloads seen so far after ms. */
async function listener() {
  const c = new pg.Client({ connectionString: t.url() });
  await c.connect();
  const seen: string[] = [];
  c.on('notification', (n) => seen.push(n.payload ?? ''));
  await c.query('LISTEN pgflare_ready');
  return {
    seen,
    settle: async (ms = 300) => {
      await c.query('SELECT 1'); // flush pending notifications
      await new Promise((r) => setTimeout(r, ms));
      return [...seen];
    },
    end: () => c.end(),
  };
}

describe('caller transaction', () => {
  it('ROLLBACK leaves nothing and sends no notification', async () => {
    const l = await listener();
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT df.start($1)', [THEN]);
      expect((await c.query('SELECT count(*)::int AS n FROM df.nodes')).rows).toEqual([{ n: 3 }]);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect(await counts()).toEqual({ instances: 0, nodes: 0 });
    expect(await l.settle()).toEqual([]);
    await l.end();
  });

  it('the notification arrives only after COMMIT, carrying the instance id', async () => {
    const l = await listener();
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      const [{ id }] = (await c.query('SELECT df.start($1) AS id', [THEN])).rows;
      expect(await l.settle(200)).toEqual([]);
      await c.query('COMMIT');
      await expect.poll(() => l.seen, { timeout: 5000 }).toEqual([id]);
    } finally {
      c.release();
      await l.end();
    }
  });

  it('only the root node is due (run_at = now()), the rest wait for the engine', async () => {
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      const [{ id }] = (await c.query('SELECT df.start($1) AS id', [THEN])).rows;
      const rows = (
        await c.query(
          `SELECT n.id = i.root_node AS is_root, n.run_at = now() AS due_now, n.run_at IS NULL AS idle,
                  n.locked_until IS NULL AS unlocked, n.attempts, n.status
             FROM df.nodes n JOIN df.instances i ON i.id = n.instance_id
            WHERE n.instance_id = $1 ORDER BY is_root DESC`,
          [id],
        )
      ).rows;
      expect(rows).toEqual([
        { is_root: true, due_now: true, idle: false, unlocked: true, attempts: 0, status: 'pending' },
        { is_root: false, due_now: null, idle: true, unlocked: true, attempts: 0, status: 'pending' },
        { is_root: false, due_now: null, idle: true, unlocked: true, attempts: 0, status: 'pending' },
      ]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  });

  it('an error after df.start in the same transaction discards the instance', async () => {
    const before = await counts();
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT df.start($1)', [THEN]);
      await expect(c.query('SELECT 1/0')).rejects.toThrow('division by zero');
      await c.query('COMMIT'); // reports ROLLBACK
    } finally {
      c.release();
    }
    expect(await counts()).toEqual(before);
  });

  it('two starts in one transaction are independent instances that commit together', async () => {
    const before = await counts();
    const c = await t.owner.connect();
    try {
      await c.query('BEGIN');
      const a = (await c.query(`SELECT df.start('SELECT 1') AS id`)).rows[0].id;
      const b = (await c.query(`SELECT df.start('SELECT 2') AS id`)).rows[0].id;
      expect(a).not.toBe(b);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    expect(await counts()).toEqual({ instances: before.instances + 2, nodes: before.nodes + 2 });
  });
});
