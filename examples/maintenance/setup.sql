-- Nightly maintenance example: a small shop schema to maintain, and the helpers the workflow calls.
-- Run as the role that will own the workflow (it needs to own the tables it vacuums and reindexes).
-- Idempotent: safe to run again.

CREATE SCHEMA IF NOT EXISTS shop;
CREATE SCHEMA IF NOT EXISTS maint;

-- Events, partitioned by day: the workflow keeps tomorrow's partitions ready and drops old ones.
CREATE TABLE IF NOT EXISTS shop.events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL,
    kind       text NOT NULL
) PARTITION BY RANGE (created_at);

-- Orders with a hot index (rebuilt with REINDEX CONCURRENTLY) and a summary view refreshed concurrently.
CREATE TABLE IF NOT EXISTS shop.orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    total       numeric(12, 2) NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_customer_idx ON shop.orders (customer_id);
CREATE MATERIALIZED VIEW IF NOT EXISTS shop.daily_orders AS
    SELECT date_trunc('day', placed_at)::date AS day, count(*) AS orders, sum(total) AS revenue
      FROM shop.orders GROUP BY 1
    ;
CREATE UNIQUE INDEX IF NOT EXISTS daily_orders_day_idx ON shop.daily_orders (day);

-- An audit log pruned to 30 days.
CREATE TABLE IF NOT EXISTS shop.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    what text NOT NULL
);

-- Creates the daily partitions of `parent` for today .. today + ahead days, and drops those that end
-- more than keep_days ago. Returns what it did, one line per partition. Transactional DDL: an ordinary step.
CREATE OR REPLACE FUNCTION maint.rotate_partitions(parent regclass, keep_days integer, ahead integer DEFAULT 2,
                                                   today date DEFAULT current_date)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    d    date;
    part record;
    name text;
BEGIN
    FOR d IN SELECT today + g FROM generate_series(0, ahead) g LOOP
        name := format('%s_%s', parent::text, to_char(d, 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           name, parent, d::timestamptz, (d + 1)::timestamptz);
            RETURN NEXT 'created ' || name;
        END IF;
    END LOOP;
    FOR part IN
        SELECT c.oid::regclass AS rel, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = parent
    LOOP
        IF part.upper <= (today - keep_days)::timestamptz THEN
            EXECUTE format('DROP TABLE %s', part.rel);
            RETURN NEXT 'dropped ' || part.rel::text;
        END IF;
    END LOOP;
END
$$;

-- Folds step texts into one sequence (`a ~> b ~> c`), for graphs built from a query.
CREATE OR REPLACE FUNCTION maint._then(acc text, step text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN acc IS NULL THEN step ELSE df.seq(acc, step) END
$$;
CREATE OR REPLACE AGGREGATE maint.then_agg(text) (SFUNC = maint._then, STYPE = text);

-- The tables worth a VACUUM (ANALYZE) now, in the given schemas: never analyzed and not empty, or with
-- at least min_dead dead rows, or with min_changed rows changed since the last analyze.
CREATE OR REPLACE FUNCTION maint.tables_to_vacuum(schemas text[], min_dead bigint DEFAULT 1000,
                                                  min_changed bigint DEFAULT 10000)
RETURNS TABLE (rel regclass, reason text) LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass,
           CASE WHEN c.reltuples < 0 AND pg_relation_size(c.oid) > 0 THEN 'never analyzed'
                WHEN s.n_dead_tup >= min_dead THEN s.n_dead_tup || ' dead rows'
                ELSE s.n_mod_since_analyze || ' rows changed' END
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
     WHERE c.relkind = 'r' AND n.nspname = ANY (schemas)
       AND ((c.reltuples < 0 AND pg_relation_size(c.oid) > 0) OR s.n_dead_tup >= min_dead OR s.n_mod_since_analyze >= min_changed)
     ORDER BY c.oid::regclass::text
$$;

-- The vacuum plan as a workflow graph: one VACUUM (ANALYZE) step per table, in sequence. VACUUM can't run
-- inside a transaction block, so each step takes the lease path (its own autocommit session).
CREATE OR REPLACE FUNCTION maint.vacuum_plan(schemas text[], min_dead bigint DEFAULT 1000) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(maint.then_agg(format('VACUUM (ANALYZE) %s', t.rel) ORDER BY t.rel::text),
                    'SELECT ''nothing to vacuum'' AS note')
      FROM maint.tables_to_vacuum(schemas, min_dead) t
$$;
