-- The nightly maintenance workflow, as a named workflow. Input (all optional):
--   {"keep_days": 7, "audit_days": 30, "min_dead": 1000}
-- Steps, each checkpointed:
--   1. rotate the daily partitions of shop.events (create ahead, drop old)        transactional
--   2. prune the audit log                                                        transactional, exactly once
--   3. refresh the summary view without blocking readers                          transactional
--   4. rebuild the hot index without blocking writers (REINDEX … CONCURRENTLY)    lease path
--   5. pick the tables that need it by query and start one VACUUM (ANALYZE) step
--      per table as a child instance labelled 'vacuum-analyze'                    lease path, per table
SELECT df.define_workflow('nightly-maintenance',
       ('SELECT string_agg(r, ''; '') AS rotated FROM maint.rotate_partitions(''shop.events'', coalesce(($input::jsonb ->> ''keep_days'')::int, 7)) r' |=> 'rotation')
    ~> ('WITH gone AS (DELETE FROM shop.audit_log WHERE at < now() - make_interval(days => coalesce(($input::jsonb ->> ''audit_days'')::int, 30)) RETURNING 1) SELECT count(*) AS pruned FROM gone' |=> 'pruned')
    ~> 'REFRESH MATERIALIZED VIEW CONCURRENTLY shop.daily_orders'
    ~> 'REINDEX INDEX CONCURRENTLY shop.orders_customer_idx'
    ~> ('SELECT df.start(maint.vacuum_plan(ARRAY[''shop''], coalesce(($input::jsonb ->> ''min_dead'')::bigint, 1000)), ''vacuum-analyze'') AS child' |=> 'vacuum'),
    'Nightly maintenance: partitions, retention, view refresh, reindex, vacuum/analyze of the tables that need it');
