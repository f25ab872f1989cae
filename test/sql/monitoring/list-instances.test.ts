/**
 * SPEC §5: df.list_instances, basic overload (0–2 arguments) and the limit rules shared by both.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sqlError, useTestDb } from '../../helpers/db.ts';

const t = useTestDb();
const FN = 'pg_durable::orchestration::execute-function-graph';

interface Inst {
  id: string;
  status: string;
  label?: string | null;
  minutesAgo: number;
  generation?: number;
  output?: string | null;
}

async function arrange(list: Inst[]) {
  const c = await t.owner.connect();
  try {
    await c.query('BEGIN');
    for (const i of list) {
      await c.query(
        `INSERT INTO df.instances (id, label, root_node, status, submitted_by, created_at, generation, output)
         VALUES ($1, $2, 'f0000001', $3, quote_ident(current_user)::regrole, now() - make_interval(mins => $4), $5, $6)`,
        [i.id, i.label ?? null, i.status, i.minutesAgo, i.generation ?? 1, i.output ?? null],
      );
      await c.query(
        `INSERT INTO df.nodes (id, instance_id, node_type, query, submitted_by) VALUES ('f0000001', $1, 'SQL', 'SELECT 1', quote_ident(current_user)::regrole)`,
        [i.id],
      );
    }
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

const error = (sql: string, settings: string[] = []) => sqlError(t, sql, settings);

beforeAll(async () => {
  await arrange([
    { id: '11000001', status: 'completed', label: 'etl', minutesAgo: 50, output: '{"rows":[{"a":1}],"row_count":1}' },
    { id: '11000002', status: 'failed', label: 'etl', minutesAgo: 40, output: 'SQL execution failed: boom' },
    { id: '11000003', status: 'running', minutesAgo: 30, generation: 4 },
    { id: '11000004', status: 'cancelled', label: 'other', minutesAgo: 20 },
    { id: '11000005', status: 'pending', minutesAgo: 10 },
  ]);
});

describe('df.list_instances (basic)', () => {
  it('lists newest first with the six pg_durable columns', async () => {
    const rows = await t.query(`SELECT * FROM df.list_instances()`);
    expect(rows).toEqual([
      { instance_id: '11000005', label: null, function_name: FN, status: 'pending', execution_count: 1, output: null },
      { instance_id: '11000004', label: 'other', function_name: FN, status: 'cancelled', execution_count: 1, output: null },
      { instance_id: '11000003', label: null, function_name: FN, status: 'running', execution_count: 4, output: null },
      { instance_id: '11000002', label: 'etl', function_name: FN, status: 'failed', execution_count: 1, output: 'SQL execution failed: boom' },
      { instance_id: '11000001', label: 'etl', function_name: FN, status: 'completed', execution_count: 1, output: '{"rows":[{"a":1}],"row_count":1}' },
    ]);
  });

  it('filters by status and limits the count (named notation)', async () => {
    expect((await t.query(`SELECT instance_id FROM df.list_instances('failed')`)).map((r) => r.instance_id)).toEqual(['11000002']);
    expect((await t.query(`SELECT instance_id FROM df.list_instances(limit_count => 2)`)).map((r) => r.instance_id)).toEqual([
      '11000005',
      '11000004',
    ]);
    expect(await t.query(`SELECT * FROM df.list_instances(status_filter => 'nope', limit_count => 1)`)).toEqual([]);
  });

  it('declares the exact result columns', async () => {
    const [r] = await t.query(`SELECT pg_get_function_result('df.list_instances(text,integer)'::regprocedure) AS res,
                                      pg_get_function_arguments('df.list_instances(text,integer)'::regprocedure) AS args`);
    expect(r).toEqual({
      res: 'TABLE(instance_id text, label text, function_name text, status text, execution_count bigint, output text)',
      args: 'status_filter text DEFAULT NULL::text, limit_count integer DEFAULT 100',
    });
  });
});

describe('limit_count rules (both overloads)', () => {
  it('rejects limit_count < 1 with 22023', async () => {
    for (const sql of [
      `SELECT * FROM df.list_instances(NULL, 0)`,
      `SELECT * FROM df.list_instances(NULL, -1)`,
      `SELECT * FROM df.list_instances(NULL, 0, NULL)`,
      `SELECT * FROM df.list_instances(NULL, 0, NULL, NULL)`,
    ]) {
      expect(await error(sql)).toEqual({ code: '22023', message: 'limit_count must be at least 1' });
    }
  });

  it('rejects more than pg_durable.list_instances_max_limit (default 1000) with 54000', async () => {
    const text = (n: number, max: number) =>
      `df.list_instances: limit_count (${n}) exceeds pg_durable.list_instances_max_limit (${max}); request fewer rows, or use the paginated df.list_instances overload (after_cursor/next_cursor) for large result sets`;
    expect(await error(`SELECT * FROM df.list_instances(NULL, 1001)`)).toEqual({ code: '54000', message: text(1001, 1000) });
    expect(await t.query(`SELECT count(*)::int AS n FROM df.list_instances(NULL, 1000)`)).toEqual([{ n: 5 }]);
    const three = [`SET pg_durable.list_instances_max_limit = 3`];
    expect(await error(`SELECT * FROM df.list_instances(NULL, 4)`, three)).toEqual({ code: '54000', message: text(4, 3) });
    expect(await error(`SELECT * FROM df.list_instances(NULL, 4, NULL)`, three)).toEqual({ code: '54000', message: text(4, 3) });
  });

  it('reads the setting per call, treating an empty value as the default', async () => {
    const c = await t.owner.connect();
    try {
      await c.query(`SET pg_durable.list_instances_max_limit = 3`);
      expect((await c.query(`SELECT count(*)::int AS n FROM df.list_instances(NULL, 3)`)).rows).toEqual([{ n: 3 }]);
      await c.query(`RESET pg_durable.list_instances_max_limit`); // a placeholder reads '' after RESET (§9)
      expect((await c.query(`SELECT count(*)::int AS n FROM df.list_instances(NULL, 1000)`)).rows).toEqual([{ n: 5 }]);
    } finally {
      await c.query('RESET ALL');
      c.release();
    }
  });
});
