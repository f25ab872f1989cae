-- 0035_history_scale: the read and prune paths stay bounded with millions of finished instances
-- (issue 20, item 1; measurements in bench/RESULTS.md, the choice in docs/ARCHITECTURE.md "History").
--
--   instances_finished_idx   terminal instances in prune order: the retention prune reads its edge and its
--                            batch from this index instead of ranking every finished instance per pass
--   df.list_instances        both overloads: built per call with only the predicates the call needs, so a
--                            status, label or cursor filter is an index range over
--                            instances_status_created_idx / instances_label_created_idx, never a walk of
--                            the whole history in created_at order
--
--   instances_label_status_created_idx   a label and a status together: one range, also when no instance
--                            has both (the label's or the status's range alone would be read to its end)
--
-- The claim, the checkpoint (df._apply) and the sweep already read only indexes that hold live rows
-- (nodes_ready_idx) or primary keys, so history does not reach them.
--
-- CREATE INDEX (not CONCURRENTLY: a migration runs in a transaction) blocks writes to df.instances while
-- it builds: on a database with millions of instances, run this migration in a quiet moment.

CREATE INDEX instances_finished_idx ON df.instances ((coalesce(completed_at, created_at)), id)
    WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX instances_label_status_created_idx ON df.instances (label, status, created_at DESC, id)
    WHERE label IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- df.list_instances, paginated overload. The status a row is listed with is df.status's: a pending
-- instance whose first step is running (its claim holds the advisory lock) is 'running'. A filter on
-- that status is turned into a filter on the stored column, so it can use the index:
--   'running'  the running rows and the pending rows holding the lock, two index scans merged in order
--   'pending'  the pending rows not holding it
--   other      the stored status
-- The statement is planned for each call (EXECUTE) with its values: a cached generic plan of one
-- statement serving every combination of filters could not pick the index a combination needs.

CREATE OR REPLACE FUNCTION df.list_instances(status_filter text, limit_count integer, label_filter text,
                                  after_cursor text DEFAULT NULL)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text, created_at timestamptz,
               completed_at timestamptz, next_cursor text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer := df._list_limit(list_instances.limit_count);
    v_ts    timestamptz;
    v_id    text;
    v_live  oid[] := ARRAY(SELECT l.objid FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2 AND l.granted
                     AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()));
    v_where text := '';
    v_cols  text := 'i.id, i.label, %s AS status, i.generation, i.output, i.created_at, i.completed_at';
    v_order text := ' ORDER BY i.created_at DESC, i.id LIMIT $6';
    v_page  text;
BEGIN
    IF list_instances.after_cursor IS NOT NULL THEN
        SELECT c.o_created_at, c.o_id INTO v_ts, v_id FROM df._list_cursor_decode(list_instances.after_cursor) AS c;
    END IF;
    IF list_instances.label_filter IS NOT NULL THEN
        v_where := v_where || ' AND i.label = $2';
    END IF;
    IF v_ts IS NOT NULL THEN
        v_where := v_where || ' AND i.created_at <= $3 AND (i.created_at < $3 OR i.id > $4)';
    END IF;

    IF list_instances.status_filter IS NULL THEN
        v_page := 'SELECT ' || format(v_cols, 'CASE WHEN i.status = ''pending'' AND hashtext(i.id)::oid = ANY ($5) THEN ''running'' ELSE i.status END')
               || ' FROM df.instances AS i WHERE i.created_at IS NOT NULL' || v_where || v_order;
    ELSIF list_instances.status_filter = 'running' THEN
        v_page := '(SELECT ' || format(v_cols, '''running''') || ' FROM df.instances AS i WHERE i.status = ''running''' || v_where || v_order
               || ') UNION ALL (SELECT ' || format(v_cols, '''running''')
               || ' FROM df.instances AS i WHERE i.status = ''pending'' AND hashtext(i.id)::oid = ANY ($5)' || v_where || v_order || ')'
               || ' ORDER BY created_at DESC, id LIMIT $6';
    ELSIF list_instances.status_filter = 'pending' THEN
        v_page := 'SELECT ' || format(v_cols, '''pending''')
               || ' FROM df.instances AS i WHERE i.status = ''pending'' AND NOT (hashtext(i.id)::oid = ANY ($5))' || v_where || v_order;
    ELSE
        v_page := 'SELECT ' || format(v_cols, 'i.status') || ' FROM df.instances AS i WHERE i.status = $1' || v_where || v_order;
    END IF;

    -- One extra row ($6 = limit + 1) tells whether a further page exists.
    RETURN QUERY EXECUTE
        'WITH page AS (' || v_page || '), numbered AS (
             SELECT p.*, row_number() OVER (ORDER BY p.created_at DESC, p.id) AS rn, count(*) OVER () AS fetched
             FROM page AS p
         )
         SELECT x.id::text, x.label, ''pg_durable::orchestration::execute-function-graph''::text,
                x.status, x.generation::bigint, x.output, x.created_at, x.completed_at,
                CASE WHEN x.fetched > $7
                     THEN max(CASE WHEN x.rn = $7 THEN df._list_cursor(x.created_at, x.id) END) OVER ()
                END
         FROM numbered AS x
         WHERE x.rn <= $7
         ORDER BY x.rn'
        USING list_instances.status_filter, list_instances.label_filter, v_ts, v_id, v_live, v_limit::bigint + 1, v_limit;
END;
$$;

-- The two-argument overload is the first page of the paginated one.
CREATE OR REPLACE FUNCTION df.list_instances(status_filter text DEFAULT NULL, limit_count integer DEFAULT 100)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.instance_id, l.label, l.function_name, l.status, l.execution_count, l.output
      FROM df.list_instances($1, $2, NULL::text, NULL::text) AS l
$$;

COMMENT ON FUNCTION df.list_instances(text, integer) IS 'The caller''s instances, newest first, optionally by status (a pending instance whose first step is running is listed as running, as by df.status).';
COMMENT ON FUNCTION df.list_instances(text, integer, text, text) IS 'The caller''s instances, newest first, by status and label, paged with a cursor (status as df.status reports it).';
