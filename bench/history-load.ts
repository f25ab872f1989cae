/**
 * Loads N finished instances into a bench database, generated in SQL (generate_series), in the shapes
 * the engine leaves behind (checked against instances it ran): per 20 instances, 12 one-step SQL
 * instances, 5 THEN of two SQL steps, 1 JOIN of three (one in extra_nodes), 1 failed (its node failed,
 * a `failed` event), 1 cancelled while sleeping. One in ten is labelled 'nightly', one 'hook:github', one
 * 'report-<n>' (50 of those). Each has its root scope; ~1.65 nodes per instance.
 *
 * Times are spread evenly over the last `days` days (oldest first, in the order a real history is
 * written, so the heap is in time order), ending an hour before the load. Instance ids are 8 hex
 * digits scattered over the id space like df._new_id()'s (a bijection of the row number, so unique).
 *
 * Run as the superuser with session_replication_role = replica: the foreign-key triggers are skipped
 * (the rows are consistent by construction), which makes the load several times faster.
 */
import { connect, nowMs, round, type BenchContext } from './common.ts';

const CHUNK = 500_000;

/** Rows g in [lo, hi] of n; the instance ids, statuses and times are functions of g alone. */
const CHUNK_SQL = `
CREATE TEMP TABLE h ON COMMIT DROP AS
SELECT lpad(to_hex((g::bigint * 2654435761) % 4294967296), 8, '0')::varchar(8) AS id, g, g % 20 AS k,
       $4::timestamptz - (($3::bigint - g)::float8 / $3) * make_interval(days => $5) AS at
  FROM generate_series($1::bigint, $2::bigint) AS g;

INSERT INTO df.instances (id, label, root_node, status, submitted_by, created_at, updated_at, completed_at, vars, generation, output)
SELECT id,
       CASE g % 10 WHEN 0 THEN 'nightly' WHEN 1 THEN 'hook:github' WHEN 2 THEN 'report-' || (g % 50) END,
       '00000001', CASE k WHEN 18 THEN 'failed' WHEN 19 THEN 'cancelled' ELSE 'completed' END,
       $6::regrole, at, at + interval '40 ms', CASE WHEN k < 18 THEN at + interval '40 ms' END, '{}', 1,
       CASE WHEN k = 18 THEN 'SQL execution failed: error returned from database: division by zero'
            WHEN k < 18 THEN '{"rows":[{"n":' || g || '}],"row_count":1}' END
  FROM h ORDER BY g;

INSERT INTO df.nodes (id, instance_id, node_type, query, left_node, right_node, status, result, submitted_by,
                      created_at, updated_at, attempts, state, status_details)
SELECT n.nid, h.id, n.t, n.q, n.l, n.r, n.s, n.res, $6::regrole, h.at, h.at + interval '40 ms', n.att, n.st,
       jsonb_build_object('execution_id', h.id || '::1')
  FROM h CROSS JOIN LATERAL (
    SELECT '00000001'::varchar(8) AS nid,
           CASE WHEN k BETWEEN 12 AND 16 THEN 'THEN' WHEN k = 17 THEN 'JOIN' WHEN k = 19 THEN 'SLEEP' ELSE 'SQL' END AS t,
           CASE WHEN k BETWEEN 12 AND 16 THEN NULL WHEN k = 17 THEN '{"extra_nodes":["00000004"]}' WHEN k = 19 THEN '600'
                WHEN k = 18 THEN 'SELECT 1/0' ELSE 'SELECT count(*) AS n FROM pg_class' END AS q,
           CASE WHEN k BETWEEN 12 AND 17 THEN '00000002' END::varchar(8) AS l,
           CASE WHEN k BETWEEN 12 AND 17 THEN '00000003' END::varchar(8) AS r,
           CASE k WHEN 18 THEN 'failed' WHEN 19 THEN 'running' ELSE 'completed' END AS s,
           CASE WHEN k = 18 THEN to_jsonb('SQL execution failed: error returned from database: division by zero'::text)
                WHEN k < 18 THEN jsonb_build_object('rows', jsonb_build_array(jsonb_build_object('n', g)), 'row_count', 1) END AS res,
           CASE WHEN k BETWEEN 12 AND 17 OR k = 19 THEN 0 ELSE 1 END AS att,
           CASE WHEN k = 17 THEN '{"done": 3}'::jsonb ELSE 'null'::jsonb END AS st
    UNION ALL
    SELECT c.nid, 'SQL', 'SELECT ' || c.nid::int, NULL, NULL, 'completed',
           jsonb_build_object('rows', jsonb_build_array(jsonb_build_object('n', g)), 'row_count', 1), 1, 'null'::jsonb
      FROM (VALUES ('00000002'::varchar(8)), ('00000003'), ('00000004')) AS c(nid)
     WHERE (k BETWEEN 12 AND 16 AND c.nid <> '00000004') OR k = 17
  ) AS n
 ORDER BY h.g, n.nid;

INSERT INTO df.scopes (instance_id, scope_id, root_node, status, result, submitted_by)
SELECT id, id, '00000001', CASE k WHEN 18 THEN 'failed' WHEN 19 THEN 'cancelled' ELSE 'completed' END,
       CASE WHEN k = 18 THEN 'SQL execution failed: error returned from database: division by zero'
            WHEN k < 18 THEN '{"rows":[{"n":' || g || '}],"row_count":1}' END, $6::regrole
  FROM h ORDER BY g;

INSERT INTO df.events (instance_id, node_id, kind, attempt, detail, submitted_by, created_at)
SELECT id, '00000001', 'failed', 1,
       '{"message":"SQL execution failed: error returned from database: division by zero","code":"22012"}',
       $6::regrole, at + interval '40 ms'
  FROM h WHERE k = 18 ORDER BY g;
`;

export interface HistoryLoad {
  instances: number;
  nodes: number;
  seconds: number;
  /** Every loaded instance was created before this time (an hour before the load). */
  before: Date;
  bytes: number;
}

/** Inserts `n` finished instances owned by `owner` over the last `days` days, VACUUM ANALYZEs them. */
export async function loadHistory(ctx: BenchContext, n: number, owner: string, days: number): Promise<HistoryLoad> {
  const c = await connect(ctx.superUrl);
  const t0 = nowMs();
  try {
    await c.query('SET session_replication_role = replica');
    // The newest instance is an hour old: the bench's own instances are all created after `before`.
    const before = (await c.query<{ t: Date }>(`SELECT now() - interval '1 hour' AS t`)).rows[0].t;
    for (let lo = 1; lo <= n; lo += CHUNK) {
      const hi = Math.min(n, lo + CHUNK - 1);
      // Literal values, not parameters: the chunk is one multi-statement simple query in its own transaction.
      const values: Record<string, string> = { 1: `${lo}`, 2: `${hi}`, 3: `${n}`, 4: `'${before.toISOString()}'`, 5: `${days}`, 6: `'${owner.replace(/'/g, "''")}'` };
      await c.query(`BEGIN; ${CHUNK_SQL.replace(/\$(\d)/g, (_m, d: string) => values[d])} COMMIT;`);
      ctx.log(`history: ${hi} / ${n} instances loaded (${round((nowMs() - t0) / 1000, 1)} s)`);
    }
    await c.query('RESET session_replication_role');
    // What autovacuum would have done to a history written over weeks: hint bits, visibility map, stats.
    await c.query('VACUUM ANALYZE df.instances, df.nodes, df.scopes, df.events');
    await c.query('CHECKPOINT');
    const { rows } = await c.query<{ nodes: string; bytes: string }>(
      `SELECT (SELECT count(*) FROM df.nodes) AS nodes, pg_database_size(current_database()) AS bytes`,
    );
    const seconds = round((nowMs() - t0) / 1000, 1);
    ctx.log(`history: ${n} instances, ${rows[0].nodes} nodes loaded in ${seconds} s; database ${round(Number(rows[0].bytes) / 2 ** 30, 2)} GiB`);
    return { instances: n, nodes: Number(rows[0].nodes), seconds, before, bytes: Number(rows[0].bytes) };
  } finally {
    await c.end();
  }
}
