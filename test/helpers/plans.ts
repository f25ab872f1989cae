/**
 * Reading plans in tests that hold a path to a bounded cost: buffers touched and plan nodes, from
 * EXPLAIN ANALYZE, which do not depend on the machine's speed; and seeding many rows at once.
 */
import type pg from 'pg';
import type { TestDb } from './db.ts';

export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Loops': number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}

/**
 * The plan of `sql` executed on one owner session the second time (the first call of a session also
 * reads the catalog). EXPLAIN ANALYZE of a function call counts the statements the function runs.
 */
export async function executedPlan(t: TestDb, sql: string, params: unknown[] = [], options = 'ANALYZE, BUFFERS'): Promise<PlanNode> {
  const c = await t.owner.connect();
  try {
    await c.query(sql, params);
    const { rows } = await c.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (${options}, FORMAT JSON) ${sql}`, params);
    return rows[0]['QUERY PLAN'][0].Plan;
  } finally {
    c.release();
  }
}

/** Shared buffers (hit + read) that executing `sql` touched. */
export async function buffers(t: TestDb, sql: string, params: unknown[] = []): Promise<number> {
  const plan = await executedPlan(t, sql, params);
  return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
}

/** Every node of a plan, depth first. */
export function planNodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(planNodes)];
}

/**
 * Runs `fn` on a superuser session with the foreign-key triggers off (session_replication_role =
 * replica), for seeding rows that are consistent by construction; the owner's name is passed in.
 */
export async function seedAsReplica(t: TestDb, fn: (c: pg.PoolClient, owner: string) => Promise<void>): Promise<void> {
  const [{ owner }] = await t.query<{ owner: string }>('SELECT current_user AS owner');
  const c = await t.superuser.connect();
  try {
    await c.query('SET session_replication_role = replica');
    await fn(c, owner);
  } finally {
    c.release();
  }
}
