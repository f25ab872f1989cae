-- 0037_list_rows: a page of df.list_instances is at most a few hundred rows, and the claim locks are read
-- only by a page that can show them (issue 20, item 1; measurements in bench/RESULTS.md "History at scale").
--
--   ROWS 100        both overloads: the planner took a call for 1 000 rows (the default estimate of a
--                   set-returning function), so a statement joining a page back to df.instances or
--                   df.nodes (GET /v1/instances) hashed the whole table instead of looking up each row
--                   by its key: a sequential scan of the history per page
--   pg_locks        read by a subquery the page's statement runs only when it meets a pending instance
--                   (for the unfiltered list: never, on a page of finished ones), not by an array built
--                   on every call; a read of pg_locks is a fifth of the call's own CPU
--   the cursor      the rows after it are two index ranges, the rest of the cursor's instant
--                   (created_at = t AND id > cursor's id) and the older ones (created_at < t), merged; one
--                   range with the filter `created_at < t OR id > …` read every row of the cursor's instant
--                   from the lowest id up, so paging through instances started in one transaction (one
--                   now()) read all the earlier ones of that instant again for every page

CREATE OR REPLACE FUNCTION df.list_instances(status_filter text, limit_count integer, label_filter text,
                                  after_cursor text DEFAULT NULL)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text, created_at timestamptz,
               completed_at timestamptz, next_cursor text)
LANGUAGE plpgsql STABLE
ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer := df._list_limit(list_instances.limit_count);
    v_ts    timestamptz;
    v_id    text;
    -- Held by a claim of the instance's first step (df.status's 'running' for a pending row). A hashed
    -- subplan: built the first time a pending row asks, once per call.
    v_live  text := 'hashtext(i.id)::oid IN (SELECT l.objid FROM pg_locks l
                      WHERE l.locktype = ''advisory'' AND l.classid = 1885824620::oid AND l.objsubid = 2 AND l.granted
                        AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))';
    v_where text := '';
    v_cols  text := 'i.id, i.label, %s AS status, i.generation, i.output, i.created_at, i.completed_at';
    v_order text := ' ORDER BY i.created_at DESC, i.id LIMIT $5';
    v_page  text;
    v_ranges text[] := ARRAY[''];
    v_base  text[];
    v_parts text[];
BEGIN
    IF list_instances.after_cursor IS NOT NULL THEN
        SELECT c.o_created_at, c.o_id INTO v_ts, v_id FROM df._list_cursor_decode(list_instances.after_cursor) AS c;
    END IF;
    IF list_instances.label_filter IS NOT NULL THEN
        v_where := v_where || ' AND i.label = $2';
    END IF;
    IF v_ts IS NOT NULL THEN
        v_ranges := ARRAY[' AND i.created_at = $3 AND i.id > $4', ' AND i.created_at < $3'];
    END IF;

    -- The selects of the page, one per range and per stored status it reads.
    IF list_instances.status_filter IS NULL THEN
        v_base := ARRAY['SELECT ' || format(v_cols, 'CASE WHEN i.status = ''pending'' AND ' || v_live || ' THEN ''running'' ELSE i.status END')
                        || ' FROM df.instances AS i WHERE i.created_at IS NOT NULL'];
    ELSIF list_instances.status_filter = 'running' THEN
        v_base := ARRAY['SELECT ' || format(v_cols, '''running''') || ' FROM df.instances AS i WHERE i.status = ''running''',
                        'SELECT ' || format(v_cols, '''running''') || ' FROM df.instances AS i WHERE i.status = ''pending'' AND ' || v_live];
    ELSIF list_instances.status_filter = 'pending' THEN
        v_base := ARRAY['SELECT ' || format(v_cols, '''pending''') || ' FROM df.instances AS i WHERE i.status = ''pending'' AND NOT ' || v_live];
    ELSE
        v_base := ARRAY['SELECT ' || format(v_cols, 'i.status') || ' FROM df.instances AS i WHERE i.status = $1'];
    END IF;
    SELECT array_agg('(' || b || v_where || r || v_order || ')') INTO v_parts
      FROM unnest(v_base) AS b CROSS JOIN unnest(v_ranges) AS r;
    v_page := array_to_string(v_parts, ' UNION ALL ');
    IF cardinality(v_parts) > 1 THEN
        v_page := v_page || ' ORDER BY created_at DESC, id LIMIT $5';
    END IF;

    -- One extra row ($5 = limit + 1) tells whether a further page exists.
    RETURN QUERY EXECUTE
        'WITH page AS (' || v_page || '), numbered AS (
             SELECT p.*, row_number() OVER (ORDER BY p.created_at DESC, p.id) AS rn, count(*) OVER () AS fetched
             FROM page AS p
         )
         SELECT x.id::text, x.label, ''pg_durable::orchestration::execute-function-graph''::text,
                x.status, x.generation::bigint, x.output, x.created_at, x.completed_at,
                CASE WHEN x.fetched > $6
                     THEN max(CASE WHEN x.rn = $6 THEN df._list_cursor(x.created_at, x.id) END) OVER ()
                END
         FROM numbered AS x
         WHERE x.rn <= $6
         ORDER BY x.rn'
        USING list_instances.status_filter, list_instances.label_filter, v_ts, v_id, v_limit::bigint + 1, v_limit;
END;
$$;

ALTER FUNCTION df.list_instances(text, integer) ROWS 100;
