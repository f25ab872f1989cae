-- 0021_small_graphs: df.start flattens a small graph without its two set-based queries.
--
-- df._flatten (0004) draws a graph's node ids with one query and returns its rows with another (unnest
-- and joins). Both are right for large graphs, where subscripting arrays inside a query is quadratic,
-- but each costs a query's start-up whatever the size: for a one-step graph they were 0.13 of
-- df._flatten's 0.16 ms, and df._flatten was 0.18 of df.start's 0.45 ms (2 000 calls in a loop,
-- pg_stat_statements and cut-down copies of the function). A graph of at most 64 nodes now draws its ids
-- one by one and, unless a condition or extras must be merged into a node's query, is returned row by
-- row. The rows are the same (test/sql/start/flatten-small.test.ts compares both paths).
--
-- Error codes: as 0004 (PF001, 54000, 23505).
CREATE OR REPLACE FUNCTION df._flatten(p_envelope text)
RETURNS TABLE (
    ord            integer,
    id             varchar(8),
    node_type      text,
    query          text,
    result_name    text,
    left_node      varchar(8),
    right_node     varchar(8),
    condition_node varchar(8),
    extra_nodes    varchar(8)[],
    parent_id      varchar(8),
    depth          integer,
    path           text,
    options        jsonb
)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c_types     constant text[] := ARRAY['SQL', 'THEN', 'IF', 'JOIN', 'LOOP', 'BREAK', 'RACE', 'SLEEP',
                                         'WAIT_SCHEDULE', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL'];
    c_max_depth constant integer := 256;
    c_max_nodes constant integer := 10000;
    c_prefix    constant text := 'Invalid durable function graph: ';
    -- work stack (top at v_top)
    s_node  jsonb[] := '{}';
    s_ord   integer[] := '{}';
    v_top   integer := 0;
    -- per node, indexed by discovery ordinal (root = 1)
    n_type   text[] := '{}';
    n_query  text[] := '{}';
    n_name   text[] := '{}';
    n_left   integer[] := '{}';
    n_right  integer[] := '{}';
    n_cond   integer[] := '{}';
    n_extras text[] := '{}';     -- comma-separated ordinals
    n_parent integer[] := '{}';
    n_depth  integer[] := '{}';
    n_path   text[] := '{}';
    n_opts   jsonb[] := '{}';    -- pgflare per-node options (retry, timeout)
    v_preorder integer[] := '{}';
    v_npre   integer := 0;
    v_count  integer := 1;
    -- current node
    v_root   jsonb;
    v_node   jsonb;
    v_ord    integer;
    v_type   text;
    v_query  text;
    v_config jsonb;
    v_config_err text;
    v_has_cond boolean;
    v_extras jsonb;
    v_children jsonb[];
    v_segments text[];
    v_child_ords integer[];
    v_extra_ords integer[];
    v_child  jsonb;
    v_path   text;
    v_err    text;
    i        integer;
    -- ids
    v_ids    varchar(8)[];
    v_unique bigint;
    v_try    integer := 0;
    v_id     varchar(8);
    v_merge  boolean := false;  -- some node has a condition or extras to merge into its query
BEGIN
    -- ===== PHASE 1: parse the root =====
    BEGIN
        v_root := p_envelope::jsonb;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        RAISE EXCEPTION '%root: failed to deserialize Durofut: %', c_prefix, SQLERRM USING ERRCODE = 'PF001';
    END;
    v_err := df._node_shape_error(v_root);
    IF v_err IS NOT NULL THEN
        RAISE EXCEPTION '%root: failed to deserialize Durofut: %', c_prefix, v_err USING ERRCODE = 'PF001';
    END IF;

    -- ===== PHASE 2: walk (node, left, right, condition, extras), validating each node =====
    v_top := 1; s_node[1] := v_root; s_ord[1] := 1;
    -- Every per-node array gets its slot at discovery, so all of them start at index 1 and stay
    -- aligned for the multi-array unnest below (a first assignment at index k would start at k).
    n_type[1] := NULL; n_query[1] := NULL; n_name[1] := NULL; n_left[1] := NULL; n_right[1] := NULL;
    n_cond[1] := NULL; n_extras[1] := NULL; n_parent[1] := NULL; n_depth[1] := 0; n_path[1] := 'root';
    v_root := NULL;
    WHILE v_top > 0 LOOP
        v_node := s_node[v_top];
        v_ord := s_ord[v_top];
        s_node[v_top] := NULL;   -- release the subtree
        v_top := v_top - 1;
        v_path := n_path[v_ord];

        IF n_depth[v_ord] > c_max_depth THEN
            RAISE EXCEPTION '%: Graph exceeds maximum nesting depth of %. Simplify the workflow or break it into multiple instances.',
                c_prefix || v_path, c_max_depth USING ERRCODE = '54000';
        END IF;
        v_type := v_node ->> 'node_type';
        IF NOT v_type = ANY (c_types) THEN
            RAISE EXCEPTION '%: Unknown node_type ''%''. Valid types: %', c_prefix || v_path, v_type,
                array_to_string(c_types, ', ') USING ERRCODE = 'PF001';
        END IF;

        v_has_cond := jsonb_typeof(v_node -> 'condition_node') = 'object';
        v_extras := CASE WHEN jsonb_typeof(v_node -> 'extra_nodes') = 'array'
                          AND jsonb_array_length(v_node -> 'extra_nodes') > 0 THEN v_node -> 'extra_nodes' END;
        IF v_has_cond AND v_type NOT IN ('IF', 'LOOP') THEN
            RAISE EXCEPTION '%: condition_node is not valid for % nodes', c_prefix || v_path, v_type USING ERRCODE = 'PF001';
        END IF;
        IF v_extras IS NOT NULL AND v_type <> 'JOIN' THEN
            RAISE EXCEPTION '%: extra_nodes is not valid for % nodes', c_prefix || v_path, v_type USING ERRCODE = 'PF001';
        END IF;

        -- The shape df.nodes' CHECK constraints require, reported as a graph error (PF001) with its path
        -- instead of surfacing later as a constraint violation (found by fuzzing).
        v_err := CASE
            WHEN v_node ->> 'result_name' !~ '^[A-Za-z_][A-Za-z0-9_]*$'
                THEN format('result_name ''%s'' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*', v_node ->> 'result_name')
            WHEN v_type IN ('SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL')
             AND (coalesce(jsonb_typeof(v_node -> 'left_node'), '') = 'object'
                  OR coalesce(jsonb_typeof(v_node -> 'right_node'), '') = 'object')
                THEN format('%s nodes take no left_node or right_node', v_type)
            WHEN v_type IN ('SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL')
             AND v_node ->> 'query' IS NULL
                THEN format('%s nodes need a query', v_type)
            WHEN v_type IN ('THEN', 'JOIN', 'RACE', 'IF')
             AND NOT (coalesce(jsonb_typeof(v_node -> 'left_node'), '') = 'object'
                      AND coalesce(jsonb_typeof(v_node -> 'right_node'), '') = 'object')
                THEN format('%s nodes need both left_node and right_node', v_type)
            WHEN v_type IN ('THEN', 'RACE') AND v_node ->> 'query' IS NOT NULL
                THEN format('%s nodes take no query', v_type)
            WHEN v_type = 'IF' AND v_node ->> 'query' IS NULL AND NOT coalesce(v_has_cond, false)
                THEN 'IF nodes need a condition_node (or the if_rows query)'
            WHEN v_type = 'LOOP' AND coalesce(jsonb_typeof(v_node -> 'left_node'), '') <> 'object'
                THEN 'LOOP nodes need a left_node (the body)'
            WHEN v_type = 'LOOP' AND coalesce(jsonb_typeof(v_node -> 'right_node'), '') = 'object'
                THEN 'LOOP nodes take no right_node'
        END;
        IF v_err IS NOT NULL THEN
            RAISE EXCEPTION '%: %', c_prefix || v_path, v_err USING ERRCODE = 'PF001';
        END IF;

        -- Config query of a composite node: the legacy embedded children are rejected; parse errors
        -- matter only when a condition/extras must be merged in (checked after the children, as §1.5).
        v_query := v_node ->> 'query';
        v_config := NULL; v_config_err := NULL;
        IF v_query IS NOT NULL AND v_type IN ('IF', 'LOOP', 'JOIN') THEN
            BEGIN
                v_config := v_query::jsonb;
            EXCEPTION WHEN invalid_text_representation THEN
                v_config_err := SQLERRM;
            END;
            IF jsonb_typeof(v_config) = 'object' THEN
                IF v_type IN ('IF', 'LOOP') AND v_config ? 'condition_node' THEN
                    RAISE EXCEPTION '%: condition_node in % must be a first-class Durofut field, not embedded in query',
                        c_prefix || v_path, v_type USING ERRCODE = 'PF001';
                ELSIF v_type = 'JOIN' AND v_config ? 'extra_nodes' THEN
                    RAISE EXCEPTION '%: extra_nodes in % must be a first-class Durofut field, not embedded in query',
                        c_prefix || v_path, v_type USING ERRCODE = 'PF001';
                END IF;
            END IF;
        END IF;

        -- Children in walk order; each is counted and parsed when discovered.
        v_children := '{}'; v_segments := '{}';
        IF jsonb_typeof(v_node -> 'left_node') = 'object' THEN
            v_children := v_children || (v_node -> 'left_node'); v_segments := v_segments || 'left'::text;
        END IF;
        IF jsonb_typeof(v_node -> 'right_node') = 'object' THEN
            v_children := v_children || (v_node -> 'right_node'); v_segments := v_segments || 'right'::text;
        END IF;
        IF v_has_cond THEN
            v_children := v_children || (v_node -> 'condition_node'); v_segments := v_segments || 'condition_node'::text;
        END IF;
        IF v_extras IS NOT NULL THEN
            SELECT v_children || array_agg(e.value ORDER BY e.n),
                   v_segments || array_agg(format('extra_nodes[%s]', e.n - 1) ORDER BY e.n)
              INTO v_children, v_segments
              FROM jsonb_array_elements(v_extras) WITH ORDINALITY AS e(value, n);
        END IF;

        v_child_ords := '{}';
        FOR i IN 1 .. coalesce(array_length(v_children, 1), 0) LOOP
            v_child := v_children[i];
            IF v_count >= c_max_nodes THEN
                RAISE EXCEPTION '%.%: Workflow exceeds maximum node count of %. Simplify the workflow or break it into multiple instances.',
                    c_prefix || v_path, v_segments[i], c_max_nodes USING ERRCODE = '54000';
            END IF;
            v_err := df._node_shape_error(v_child);
            IF v_err IS NOT NULL THEN
                RAISE EXCEPTION '%.%: failed to deserialize Durofut child: %', c_prefix || v_path, v_segments[i], v_err
                    USING ERRCODE = 'PF001';
            END IF;
            v_count := v_count + 1;
            v_child_ords[i] := v_count;
            n_type[v_count] := NULL; n_query[v_count] := NULL; n_name[v_count] := NULL;
            n_left[v_count] := NULL; n_right[v_count] := NULL; n_cond[v_count] := NULL; n_extras[v_count] := NULL;
            n_parent[v_count] := v_ord;
            n_depth[v_count] := n_depth[v_ord] + 1;
            n_path[v_count] := v_path || '.' || v_segments[i];
        END LOOP;

        v_merge := v_merge OR coalesce(v_has_cond, false) OR v_extras IS NOT NULL;
        IF (v_has_cond OR v_extras IS NOT NULL) AND v_query IS NOT NULL THEN
            IF v_config_err IS NOT NULL THEN
                RAISE EXCEPTION '%: query in % must be valid JSON config: %', c_prefix || v_path, v_type, v_config_err
                    USING ERRCODE = 'PF001';
            ELSIF jsonb_typeof(v_config) <> 'object' THEN
                RAISE EXCEPTION '%: query in % must be a JSON config object', c_prefix || v_path, v_type
                    USING ERRCODE = 'PF001';
            END IF;
        END IF;

        -- Record the node (children are referenced by ordinal until ids exist).
        i := 0;
        n_type[v_ord] := v_type;
        n_query[v_ord] := v_query;
        n_name[v_ord] := v_node ->> 'result_name';
        n_opts[v_ord] := CASE WHEN jsonb_typeof(v_node -> 'pgflare') = 'object' THEN v_node -> 'pgflare' END;
        IF jsonb_typeof(v_node -> 'left_node') = 'object' THEN i := i + 1; n_left[v_ord] := v_child_ords[i]; END IF;
        IF jsonb_typeof(v_node -> 'right_node') = 'object' THEN i := i + 1; n_right[v_ord] := v_child_ords[i]; END IF;
        IF v_has_cond THEN i := i + 1; n_cond[v_ord] := v_child_ords[i]; END IF;
        IF v_extras IS NOT NULL THEN
            v_extra_ords := v_child_ords[i + 1 : array_length(v_child_ords, 1)];
            n_extras[v_ord] := array_to_string(v_extra_ords, ',');
        END IF;
        v_npre := v_npre + 1;
        v_preorder[v_npre] := v_ord;

        -- Push children reversed so the left subtree is walked first.
        FOR i IN REVERSE coalesce(array_length(v_children, 1), 0) .. 1 LOOP
            v_top := v_top + 1;
            s_node[v_top] := v_children[i];
            s_ord[v_top] := v_child_ords[i];
        END LOOP;
        v_children := NULL;
    END LOOP;

    -- ===== PHASE 3: node ids, unique within the graph =====
    IF v_count <= 64 THEN
        -- A small graph draws its ids one by one: the set-based draw below costs a query (~55 µs), more
        -- than all the draws of a graph this size.
        v_ids := '{}';
        WHILE cardinality(v_ids) < v_count LOOP
            v_try := v_try + 1;
            IF v_try > v_count + 10 THEN
                RAISE EXCEPTION '%root: exhausted 10 attempts to generate a graph-unique node ID', c_prefix
                    USING ERRCODE = '23505';
            END IF;
            v_id := df._new_id();
            IF NOT v_id = ANY (v_ids) THEN
                v_ids := v_ids || v_id;
            END IF;
        END LOOP;
    ELSE
        LOOP
            v_try := v_try + 1;
            SELECT array_agg(g.x), count(DISTINCT g.x) INTO v_ids, v_unique
              FROM (SELECT df._new_id() AS x FROM generate_series(1, v_count)) g;
            EXIT WHEN v_unique = v_count;
            IF v_try >= 10 THEN
                RAISE EXCEPTION '%root: exhausted 10 attempts to generate a graph-unique node ID', c_prefix
                    USING ERRCODE = '23505';
            END IF;
        END LOOP;
    END IF;

    -- ===== PHASE 4: rows in pre-order, with condition/extras merged into the config query =====
    -- Set-based (unnest + hash joins): subscripting large arrays inside a query is quadratic.
    IF v_count <= 64 AND NOT v_merge THEN
        -- A small graph with nothing to merge is returned row by row: starting the set-based query
        -- below costs ~70 µs per call, most of a one-step df.start's flattening (bench/ W2 sustained).
        FOR i IN 1 .. v_npre LOOP
            v_ord := v_preorder[i];
            ord := i;
            id := v_ids[v_ord];
            node_type := n_type[v_ord];
            query := n_query[v_ord];
            result_name := n_name[v_ord];
            left_node := v_ids[n_left[v_ord]];
            right_node := v_ids[n_right[v_ord]];
            condition_node := NULL;
            extra_nodes := NULL;
            parent_id := v_ids[n_parent[v_ord]];
            depth := n_depth[v_ord];
            path := n_path[v_ord];
            options := n_opts[v_ord];
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;
    RETURN QUERY
    WITH ids AS (
        SELECT t.nid, t.o FROM unnest(v_ids) WITH ORDINALITY AS t(nid, o)
    ), nodes AS (
        SELECT t.* FROM unnest(n_type, n_query, n_name, n_left, n_right, n_cond, n_extras, n_parent, n_depth, n_path, n_opts)
                        WITH ORDINALITY AS t(typ, qry, nam, lft, rgt, cnd, ext, par, dep, pth, opt, o)
    ), extras AS (
        SELECT n.o, array_agg(x.nid ORDER BY e.k)::varchar(8)[] AS eids
          FROM nodes n
         CROSS JOIN LATERAL unnest(string_to_array(n.ext, ',')) WITH ORDINALITY AS e(c, k)
          JOIN ids x ON x.o = e.c::bigint
         WHERE n.ext IS NOT NULL
         GROUP BY n.o
    )
    SELECT p.pos::integer,
           me.nid,
           n.typ,
           CASE WHEN n.cnd IS NULL AND n.ext IS NULL THEN n.qry
                ELSE '{' || concat_ws(',',
                        (SELECT string_agg(to_json(kv.key)::text || ':' || kv.value::text, ',' ORDER BY kv.k)
                           FROM json_each(n.qry::json) WITH ORDINALITY AS kv(key, value, k)),
                        '"condition_node":' || to_json(c.nid)::text,
                        '"extra_nodes":' || to_json(x.eids)::text) || '}'
           END,
           n.nam,
           l.nid, r.nid, c.nid, x.eids, par.nid,
           n.dep, n.pth, n.opt
      FROM unnest(v_preorder) WITH ORDINALITY AS p(o, pos)
      JOIN nodes n ON n.o = p.o
      JOIN ids me ON me.o = p.o
      LEFT JOIN ids l ON l.o = n.lft
      LEFT JOIN ids r ON r.o = n.rgt
      LEFT JOIN ids c ON c.o = n.cnd
      LEFT JOIN ids par ON par.o = n.par
      LEFT JOIN extras x ON x.o = p.o
     ORDER BY p.pos;
END
$$;
