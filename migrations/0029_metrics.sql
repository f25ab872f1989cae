-- 0029_metrics: df.metrics() grows the numbers a Workers user cannot scrape from a process (the Node
-- worker's Prometheus endpoint has them as counters): steps completed, failed and retried, schedule
-- fires and webhook deliveries over the last hour, and the ready backlog and its oldest entry's age now.
-- The six pg_durable columns stay first and unchanged; a caller still sees only its own rows (RLS).
--
-- A function's result columns cannot change in place, so it is dropped and made again, and the EXECUTE
-- grants it had (df.grant_usage(..., with_grant => true) gives it) are given back from its old ACL.

SELECT set_config('pgflare.metrics_acl',
                  coalesce((SELECT string_agg(format('%s %s', a.grantee::regrole, CASE WHEN a.is_grantable THEN 'grantable' ELSE 'plain' END), ',')
                              FROM pg_proc p, aclexplode(p.proacl) a
                             WHERE p.oid = 'df.metrics()'::regprocedure AND a.grantee <> p.proowner
                               AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), ''),
                  false);

DROP FUNCTION df.metrics();

-- Steps completed: leaves (SQL and HTTP) completed in the window, by their updated_at; failed and
-- retried: the engine's 'failed' and 'attempt_failed' events. The backlog reads the ready index
-- (nodes_ready_idx: run_at IS NOT NULL).
CREATE FUNCTION df.metrics()
RETURNS TABLE (total_instances bigint, running_instances bigint, completed_instances bigint,
               failed_instances bigint, total_executions bigint, total_events bigint,
               window_start timestamptz, steps_completed bigint, steps_failed bigint, steps_retried bigint,
               ready_backlog bigint, oldest_ready_age_seconds double precision,
               schedules_fired bigint, schedule_fires_failed bigint, webhook_deliveries bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (SELECT now() - interval '1 hour' AS since),
    ready AS (
        SELECT count(*) AS backlog, min(n.run_at) AS oldest
          FROM df.nodes AS n WHERE n.run_at IS NOT NULL AND n.run_at <= now()
    )
    SELECT count(*),
           count(*) FILTER (WHERE i.status IN ('pending', 'running')),
           count(*) FILTER (WHERE i.status = 'completed'),
           count(*) FILTER (WHERE i.status IN ('failed', 'cancelled')),
           coalesce(sum(i.generation), 0)::bigint,
           (SELECT count(*) FROM df.nodes AS n WHERE n.status_details IS NOT NULL),
           (SELECT since FROM w),
           (SELECT count(*) FROM df.nodes AS n, w
             WHERE n.node_type IN ('SQL', 'HTTP', 'HTTP_MULTIPART') AND n.status = 'completed' AND n.updated_at >= w.since),
           (SELECT count(*) FROM df.events AS e, w WHERE e.kind = 'failed' AND e.created_at >= w.since),
           (SELECT count(*) FROM df.events AS e, w WHERE e.kind = 'attempt_failed' AND e.created_at >= w.since),
           (SELECT backlog FROM ready),
           (SELECT coalesce(greatest(extract(epoch FROM now() - oldest)::float8, 0), 0) FROM ready),
           (SELECT count(*) FROM df.schedule_fires AS f, w WHERE f.outcome = 'started' AND f.fired_at >= w.since),
           (SELECT count(*) FROM df.schedule_fires AS f, w WHERE f.outcome = 'failed' AND f.fired_at >= w.since),
           (SELECT count(*) FROM df.hook_deliveries AS d, w WHERE d.received_at >= w.since)
    FROM df.instances AS i
$$;

REVOKE EXECUTE ON FUNCTION df.metrics() FROM PUBLIC;

DO $$
DECLARE
    v_item text;
BEGIN
    FOREACH v_item IN ARRAY coalesce(string_to_array(nullif(current_setting('pgflare.metrics_acl'), ''), ','), '{}'::text[]) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION df.metrics() TO %s%s', split_part(v_item, ' ', 1),
                       CASE WHEN split_part(v_item, ' ', 2) = 'grantable' THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;

SELECT set_config('pgflare.metrics_acl', '', false);

COMMENT ON FUNCTION df.metrics() IS
  'Counts of the rows the caller may see: instances by status, executions and events (pg_durable''s six columns), then over the last hour steps completed, failed and retried, schedules fired and failed, webhook deliveries, and now the ready backlog and its oldest entry''s age; revoked from PUBLIC, granted with with_grant.';
