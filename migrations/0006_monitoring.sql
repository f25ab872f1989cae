-- 0006_monitoring: monitoring functions of SPEC §5 (list_instances, instance_info,
-- instance_executions, instance_nodes) and the §5.2 inferred_status shared with df.explain.
--
-- Everything reads df.instances / df.nodes as the caller (SECURITY INVOKER), so RLS scopes every
-- answer to the caller's own instances; status always comes from df.instances, so df.status,
-- df.list_instances and df.instance_info agree.
--
-- SQLSTATEs raised here (stable; clients may match on them):
--   22023 invalid_parameter_value   limit_count < 1; an after_cursor that is not one we issued
--   54000 program_limit_exceeded    limit_count above pg_durable.list_instances_max_limit

-- ---------------------------------------------------------------------------------------------
-- Internals

-- A signed 64-bit integer, or NULL when the text is not one (Rust's i64 parse, used by pg_durable
-- to read stamp generations). Nested CASEs fix the evaluation order so the casts never raise.
CREATE FUNCTION df._i64_or_null(p_text text) RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_text ~ '^[+-]?[0-9]{1,30}$' THEN
               CASE WHEN p_text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
                    THEN p_text::numeric::bigint END
           END
$$;

-- The page-size guard shared by both df.list_instances overloads.
CREATE FUNCTION df._list_limit(p_limit integer) RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := btrim(df._setting('list_instances_max_limit', '1000'));
    v_max     integer := 1000;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = '22023';
    END IF;
    -- An unparsable or out-of-range setting falls back to the default (pg_durable's GUC range is
    -- 1..1000000, which PostgreSQL enforced for it).
    IF v_setting ~ '^[0-9]{1,7}$' AND v_setting::integer BETWEEN 1 AND 1000000 THEN
        v_max := v_setting::integer;
    END IF;
    IF p_limit > v_max THEN
        RAISE EXCEPTION 'df.list_instances: limit_count (%) exceeds pg_durable.list_instances_max_limit (%); request fewer rows, or use the paginated df.list_instances overload (after_cursor/next_cursor) for large result sets',
            p_limit, v_max USING ERRCODE = '54000';
    END IF;
    RETURN p_limit;
END;
$$;

-- Keyset cursor: lower-case hex of 'v1|<created_at as to_char(...USOF)>|<id>' (SPEC §5).
CREATE FUNCTION df._list_cursor(p_created_at timestamptz, p_id text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(convert_to('v1|' || to_char(p_created_at, 'YYYY-MM-DD"T"HH24:MI:SS.USOF') || '|' || p_id,
                             'UTF8'), 'hex')
$$;

-- Decodes a cursor into (created_at, id); any token we could not have issued is rejected with one
-- message, so a client never silently restarts from page one.
CREATE FUNCTION df._list_cursor_decode(p_cursor text, OUT o_created_at timestamptz, OUT o_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_text    text;
    v_rest    text;
    v_ts      text;
BEGIN
    IF p_cursor = '' OR length(p_cursor) > 512 OR length(p_cursor) % 2 <> 0
       OR p_cursor !~ '^[0-9A-Fa-f]+$' THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    BEGIN
        v_text := convert_from(decode(p_cursor, 'hex'), 'UTF8');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END;
    -- '<version>|<ts>|<id>': the id is everything after the second '|'.
    IF split_part(v_text, '|', 1) <> 'v1' OR strpos(v_text, '|') = 0 THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    v_rest := substr(v_text, strpos(v_text, '|') + 1);
    IF strpos(v_rest, '|') = 0 THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    v_ts := substr(v_rest, 1, strpos(v_rest, '|') - 1);
    o_id := substr(v_rest, strpos(v_rest, '|') + 1);
    IF v_ts = '' OR o_id = ''
       OR v_ts !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}(:[0-9]{2})?$' THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    -- Well-shaped but impossible (month 13, …): also a bad cursor rather than a cast error.
    BEGIN
        o_created_at := v_ts::timestamptz;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- §5.2 inferred_status: one row per node of the instance (as visible to the caller).
--
-- 1. Stamps are status_details->>'execution_id' = '<scope>::<generation>'; scopes nest as
--    '<parent scope>::<parent gen>::<child root node id>'. scope_max = highest generation stamped per
--    scope; a stamp is superseded when its generation, or any ancestor scope's spawning generation,
--    is below that scope's max.
-- 2. Depth-first walk from the root (pg_durable's explicit stack: children pushed in order, the last
--    pushed popped first; a node reached twice keeps its first visit), carrying the nearest decisive
--    ancestor (completed/failed, not superseded) and the highest-generation ancestor.
-- 3./4. See the comments in the walk. Unreachable nodes keep their stored status.
CREATE FUNCTION df._inferred_status(p_instance_id text)
RETURNS TABLE (node_id text, inferred_status text, inferred_status_from_ancestor_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_root     text;
    v_ids      text[];
    v_types    text[];
    v_queries  text[];
    v_lefts    text[];
    v_rights   text[];
    v_statuses text[];
    v_gens     bigint[];
    v_sup      boolean[];
    v_pos      jsonb;        -- node id -> position in the arrays above
    v_n        integer;
    v_seen     boolean[];
    v_inf      text[];
    v_from     text[];
    -- the walk stack: node id, decisive ancestor, highest-generation ancestor (generation, id)
    s_node     text[] := '{}';
    s_nta      text[] := '{}';
    s_ag       bigint[] := '{}';
    s_aid      text[] := '{}';
    v_top      integer := 0;
    v_id       text;
    v_nta      text;
    v_ag       bigint;
    v_aid      text;
    v_i        integer;
    v_terminal boolean;
    v_super    boolean;
    v_cfg      jsonb;
    v_kids     text[];
    v_kid      text;
BEGIN
    SELECT i.root_node INTO v_root FROM df.instances AS i WHERE i.id = p_instance_id;

    WITH raw AS (
        SELECT n.id::text AS id, n.node_type, n.query, n.left_node::text AS left_node,
               n.right_node::text AS right_node, n.status,
               CASE WHEN jsonb_typeof(n.status_details -> 'execution_id') = 'string'
                    THEN string_to_array(n.status_details ->> 'execution_id', '::') END AS tok
        FROM df.nodes AS n
        WHERE n.instance_id = p_instance_id
    ), parsed AS (
        -- A stamp parses when it has an even number of tokens (odd-length scope + generation), a
        -- non-empty instance id, integer generations at every even position and non-empty node ids
        -- at the odd positions after the first.
        SELECT r.*, cardinality(r.tok) AS ntok,
               coalesce(cardinality(r.tok) >= 2 AND cardinality(r.tok) % 2 = 0 AND r.tok[1] <> ''
                        AND NOT EXISTS (
                            SELECT 1 FROM generate_series(2, cardinality(r.tok)) AS k
                            WHERE (k % 2 = 0 AND df._i64_or_null(r.tok[k]) IS NULL)
                               OR (k % 2 = 1 AND r.tok[k] = '')), false) AS valid
        FROM raw AS r
    ), levels AS (
        -- level 0 = the node's own (scope, generation); level k = its k-th ancestor scope and the
        -- generation of that scope which spawned the child.
        SELECT p.id, k AS lvl,
               array_to_string(p.tok[1:p.ntok - 1 - 2 * k], '::') AS scope,
               df._i64_or_null(p.tok[p.ntok - 2 * k]) AS gen
        FROM parsed AS p, generate_series(0, (p.ntok - 2) / 2) AS k
        WHERE p.valid
    ), scope_max AS (
        SELECT l.scope, max(l.gen) AS max_gen FROM levels AS l WHERE l.lvl = 0 GROUP BY l.scope
    ), superseded AS (
        SELECT l.id, bool_or(l.gen < m.max_gen) AS sup
        FROM levels AS l JOIN scope_max AS m ON m.scope = l.scope
        GROUP BY l.id
    ), nodes AS (
        SELECT p.id, p.node_type, p.query, p.left_node, p.right_node, p.status,
               CASE WHEN p.valid THEN df._i64_or_null(p.tok[p.ntok]) END AS gen,
               coalesce(s.sup, false) AS sup,
               row_number() OVER (ORDER BY p.id) AS pos
        FROM parsed AS p LEFT JOIN superseded AS s ON s.id = p.id
    )
    SELECT array_agg(x.id ORDER BY x.pos), array_agg(x.node_type ORDER BY x.pos),
           array_agg(x.query ORDER BY x.pos), array_agg(x.left_node ORDER BY x.pos),
           array_agg(x.right_node ORDER BY x.pos), array_agg(x.status ORDER BY x.pos),
           array_agg(x.gen ORDER BY x.pos), array_agg(x.sup ORDER BY x.pos),
           jsonb_object_agg(x.id, x.pos), count(*)
    INTO v_ids, v_types, v_queries, v_lefts, v_rights, v_statuses, v_gens, v_sup, v_pos, v_n
    FROM nodes AS x;

    IF v_n = 0 THEN
        RETURN;
    END IF;
    v_seen := array_fill(false, ARRAY[v_n]);
    v_inf := array_fill(NULL::text, ARRAY[v_n]);
    v_from := array_fill(NULL::text, ARRAY[v_n]);

    IF v_root IS NOT NULL THEN
        v_top := 1;
        s_node[1] := v_root; s_nta[1] := NULL; s_ag[1] := NULL; s_aid[1] := NULL;
    END IF;

    WHILE v_top > 0 LOOP
        v_id := s_node[v_top]; v_nta := s_nta[v_top]; v_ag := s_ag[v_top]; v_aid := s_aid[v_top];
        v_top := v_top - 1;
        v_i := (v_pos ->> v_id)::integer;
        CONTINUE WHEN v_i IS NULL OR v_seen[v_i];   -- dangling reference / already visited
        v_seen[v_i] := true;

        v_terminal := coalesce(v_statuses[v_i] IN ('completed', 'failed'), false);
        v_super := v_sup[v_i];
        IF v_terminal THEN
            IF NOT v_super THEN
                v_inf[v_i] := v_statuses[v_i];                     -- ran in the current generation
            ELSIF v_nta IS NOT NULL THEN
                v_inf[v_i] := 'skipped'; v_from[v_i] := v_nta;     -- an ancestor decided against it
            ELSE
                v_inf[v_i] := 'pending'; v_from[v_i] := v_aid;     -- older generation: will re-run
            END IF;
        ELSIF v_nta IS NOT NULL THEN
            v_inf[v_i] := 'skipped'; v_from[v_i] := v_nta;         -- untaken arm / after a failure
        ELSIF v_statuses[v_i] = 'running' THEN
            v_inf[v_i] := 'running';
        ELSE
            v_inf[v_i] := 'pending';
        END IF;

        -- Only a terminal node of the current generation decides for its descendants.
        IF v_terminal AND NOT v_super THEN
            v_nta := v_id;
        END IF;
        IF v_gens[v_i] IS NOT NULL AND (v_ag IS NULL OR v_gens[v_i] >= v_ag) THEN
            v_ag := v_gens[v_i]; v_aid := v_id;
        END IF;

        v_cfg := CASE WHEN upper(v_types[v_i]) IN ('IF', 'LOOP', 'JOIN') AND v_queries[v_i] IS NOT NULL
                      THEN df._jsonb_or_null(v_queries[v_i]) END;
        v_kids := CASE upper(v_types[v_i])
            WHEN 'THEN' THEN ARRAY[v_lefts[v_i], v_rights[v_i]]
            WHEN 'RACE' THEN ARRAY[v_lefts[v_i], v_rights[v_i]]
            WHEN 'JOIN' THEN ARRAY[v_lefts[v_i], v_rights[v_i]] || CASE
                WHEN jsonb_typeof(v_cfg -> 'extra_nodes') = 'array' THEN
                    ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(v_cfg -> 'extra_nodes') WITH ORDINALITY AS x(e, o)
                          WHERE jsonb_typeof(e) = 'string' ORDER BY o)
                ELSE '{}'::text[] END
            WHEN 'IF' THEN ARRAY[CASE WHEN jsonb_typeof(v_cfg -> 'condition_node') = 'string'
                                      THEN v_cfg ->> 'condition_node' END,
                                 v_lefts[v_i], v_rights[v_i]]
            WHEN 'LOOP' THEN ARRAY[v_lefts[v_i],
                                   CASE WHEN jsonb_typeof(v_cfg -> 'condition_node') = 'string'
                                        THEN v_cfg ->> 'condition_node' END]
            ELSE '{}'::text[] END;
        FOREACH v_kid IN ARRAY v_kids LOOP
            CONTINUE WHEN v_kid IS NULL;
            v_top := v_top + 1;
            s_node[v_top] := v_kid; s_nta[v_top] := v_nta; s_ag[v_top] := v_ag; s_aid[v_top] := v_aid;
        END LOOP;
    END LOOP;

    RETURN QUERY
        SELECT v_ids[k], coalesce(v_inf[k], v_statuses[k], 'pending'), v_from[k]
        FROM generate_subscripts(v_ids, 1) AS k;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- list_instances, basic overload (0–2 arguments).

CREATE FUNCTION df.list_instances(status_filter text DEFAULT NULL, limit_count integer DEFAULT 100)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer := df._list_limit(list_instances.limit_count);
BEGIN
    RETURN QUERY
        SELECT i.id::text, i.label, 'pg_durable::orchestration::execute-function-graph'::text,
               i.status, i.generation::bigint, i.output
        FROM df.instances AS i
        WHERE list_instances.status_filter IS NULL OR i.status = list_instances.status_filter
        ORDER BY i.created_at DESC, i.id
        LIMIT v_limit;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- list_instances, paginated overload (3–4 arguments; no defaults on the first three, so the two
-- overloads never collide). Keyset on (created_at DESC, id ASC); one extra row tells whether a
-- further page exists.

CREATE FUNCTION df.list_instances(status_filter text, limit_count integer, label_filter text,
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
BEGIN
    IF list_instances.after_cursor IS NOT NULL THEN
        SELECT c.o_created_at, c.o_id INTO v_ts, v_id FROM df._list_cursor_decode(list_instances.after_cursor) AS c;
    END IF;

    RETURN QUERY
        WITH page AS (
            SELECT i.id, i.label, i.status, i.generation, i.output, i.created_at, i.completed_at
            FROM df.instances AS i
            WHERE i.created_at IS NOT NULL
              AND (list_instances.status_filter IS NULL OR i.status = list_instances.status_filter)
              AND (list_instances.label_filter IS NULL OR i.label = list_instances.label_filter)
              AND (v_ts IS NULL OR (i.created_at <= v_ts
                                    AND (i.created_at < v_ts OR (i.created_at = v_ts AND i.id > v_id))))
            ORDER BY i.created_at DESC, i.id
            LIMIT v_limit::bigint + 1
        ), numbered AS (
            SELECT p.*, row_number() OVER (ORDER BY p.created_at DESC, p.id) AS rn,
                   count(*) OVER () AS fetched
            FROM page AS p
        )
        SELECT x.id::text, x.label, 'pg_durable::orchestration::execute-function-graph'::text,
               x.status, x.generation::bigint, x.output, x.created_at, x.completed_at,
               CASE WHEN x.fetched > v_limit
                    THEN max(CASE WHEN x.rn = v_limit THEN df._list_cursor(x.created_at, x.id) END) OVER ()
               END
        FROM numbered AS x
        WHERE x.rn <= v_limit
        ORDER BY x.rn;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- instance_info: 0 or 1 row.

CREATE FUNCTION df.instance_info(instance_id text)
RETURNS TABLE (instance_id text, label text, function_name text, function_version text,
               current_execution_id bigint, status text, output text)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.id::text, i.label, 'pg_durable::orchestration::execute-function-graph'::text,
           '1.0.0'::text, i.generation::bigint, i.status, i.output
    FROM df.instances AS i
    WHERE i.id = $1
$$;

-- ---------------------------------------------------------------------------------------------
-- instance_executions: pgflare keeps no per-generation history yet, so this reports one row per root
-- generation, newest first. The current generation's status follows the instance; every older one
-- was continued as new (a root loop iteration). event_count = nodes whose stamp belongs to that root
-- generation (the token after the instance id, in any scope). duration_ms is only known for a
-- single-generation instance that completed.

CREATE FUNCTION df.instance_executions(instance_id text, limit_count integer DEFAULT 5)
RETURNS TABLE (execution_id bigint, status text, event_count bigint, duration_ms bigint, output text)
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer;
BEGIN
    IF instance_executions.limit_count < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = '22023';
    END IF;
    v_limit := least(instance_executions.limit_count, 10000);

    RETURN QUERY
        WITH inst AS (
            SELECT i.id, i.status, i.generation, i.output, i.created_at, i.completed_at
            FROM df.instances AS i WHERE i.id = instance_executions.instance_id
        ), stamps AS (
            SELECT df._i64_or_null(split_part(n.status_details ->> 'execution_id', '::', 2)) AS root_gen
            FROM df.nodes AS n
            WHERE n.instance_id = instance_executions.instance_id
              AND jsonb_typeof(n.status_details -> 'execution_id') = 'string'
        )
        SELECT g::bigint,
               CASE WHEN g < inst.generation THEN 'ContinuedAsNew'
                    ELSE CASE inst.status WHEN 'running' THEN 'Running'
                                          WHEN 'completed' THEN 'Completed'
                                          WHEN 'failed' THEN 'Failed'
                                          WHEN 'cancelled' THEN 'Terminated'
                                          ELSE 'Pending' END
               END,
               (SELECT count(*) FROM stamps AS s WHERE s.root_gen = g),
               CASE WHEN g = inst.generation AND inst.generation = 1 AND inst.completed_at IS NOT NULL
                    THEN floor(extract(epoch FROM inst.completed_at - inst.created_at) * 1000)::bigint
               END,
               CASE WHEN g = inst.generation THEN inst.output END
        FROM inst, generate_series(inst.generation, 1, -1) AS g
        ORDER BY g DESC
        LIMIT v_limit;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- instance_nodes: one row per node with the stored status and the read-time inferred status.

CREATE FUNCTION df.instance_nodes(instance_id_param text)
RETURNS TABLE (node_id text, node_type text, query text, result_name text, left_node text,
               right_node text, status text, result text, status_details text,
               inferred_status text, inferred_status_from_ancestor_id text, updated_at timestamptz)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.id::text, n.node_type, n.query, n.result_name, n.left_node::text, n.right_node::text,
           n.status, n.result::text, n.status_details::text,
           coalesce(s.inferred_status, n.status, 'pending'), s.inferred_status_from_ancestor_id,
           n.updated_at
    FROM df.nodes AS n
    LEFT JOIN df._inferred_status($1) AS s ON s.node_id = n.id
    WHERE n.instance_id = $1
$$;

-- Legacy shape (pre-0.2.4): a plain projection, execution_id always 1; the second argument is ignored.
CREATE FUNCTION df.instance_nodes(instance_id_param text, _last_n_executions integer)
RETURNS TABLE (execution_id bigint, node_id text, node_type text, query text, result_name text,
               left_node text, right_node text, status text, result text, updated_at timestamptz)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 1::bigint, n.id::text, n.node_type, n.query, n.result_name, n.left_node::text,
           n.right_node::text, n.status, n.result::text, n.updated_at
    FROM df.nodes AS n
    WHERE n.instance_id = $1
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants: the public API only; the df._ internals stay ungranted (df.grant_usage grants them).
GRANT EXECUTE ON FUNCTION df.list_instances(text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.list_instances(text, integer, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.instance_info(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.instance_executions(text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.instance_nodes(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.instance_nodes(text, integer) TO PUBLIC;
