-- 0004_start: graph validation and materialisation (df._flatten) and df.start (SPEC §1.5, §5.0, §6.1)
--
--   df._serde_kind(v)        how serde would name a JSON value in an "invalid type" message
--   df._node_shape_error(n)  why one envelope level does not parse as a Durofut (NULL when it does)
--   df._flatten(envelope)    the §1.5 pre-order walk: one row per node, ids assigned, errors with paths
--   df.start(...)            writes the instance and its nodes in the caller's transaction, makes it claimable
--
-- Error codes: PF001 invalid envelope/graph, 54000 depth/node-count limits, 22023 bad argument value,
-- 42501 LOGIN/superuser gate, 3D000 unknown database, 0A000 unsupported mode/database.

-- serde_json's wording for a value of the wrong type ("invalid type: integer `5`, expected a string").
CREATE FUNCTION df._serde_kind(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(p_value)
        WHEN 'null' THEN 'null'
        WHEN 'boolean' THEN format('boolean `%s`', p_value::text)
        WHEN 'number' THEN CASE WHEN p_value::text ~ '^-?[0-9]+$' THEN format('integer `%s`', p_value::text)
                                ELSE format('floating point `%s`', p_value::text) END
        WHEN 'string' THEN format('string %s', p_value::text)
        WHEN 'array' THEN 'sequence'
        ELSE 'map' END
$$;

-- One level of an envelope checked the way pg_durable deserialises a Durofut: node_type is a string,
-- children are objects (or null), extra_nodes is an array of objects, query/result_name are strings.
-- Unknown keys are ignored. Returns NULL when the level parses.
CREATE FUNCTION df._node_shape_error(p_node jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_node) <> 'object'
            THEN format('invalid type: %s, expected struct Durofut', df._serde_kind(p_node))
        WHEN NOT p_node ? 'node_type'
            THEN 'missing field `node_type`'
        WHEN jsonb_typeof(p_node -> 'node_type') <> 'string'
            THEN format('invalid type: %s, expected a string', df._serde_kind(p_node -> 'node_type'))
        WHEN jsonb_typeof(p_node -> 'left_node') NOT IN ('object', 'null')
          OR jsonb_typeof(p_node -> 'right_node') NOT IN ('object', 'null')
            THEN 'Durofut children must be JSON objects'
        WHEN jsonb_typeof(p_node -> 'condition_node') NOT IN ('object', 'null')
            THEN 'condition_node must be a Durofut JSON object'
        WHEN jsonb_typeof(p_node -> 'extra_nodes') <> 'array'
            THEN format('invalid type: %s, expected a sequence', df._serde_kind(p_node -> 'extra_nodes'))
        WHEN jsonb_typeof(p_node -> 'extra_nodes') = 'array'
         AND EXISTS (SELECT 1 FROM jsonb_array_elements(p_node -> 'extra_nodes') e WHERE jsonb_typeof(e) <> 'object')
            THEN 'extra_nodes entries must be Durofut JSON objects'
        WHEN jsonb_typeof(p_node -> 'query') NOT IN ('string', 'null')
            THEN format('invalid type: %s, expected a string', df._serde_kind(p_node -> 'query'))
        WHEN jsonb_typeof(p_node -> 'result_name') NOT IN ('string', 'null')
            THEN format('invalid type: %s, expected a string', df._serde_kind(p_node -> 'result_name'))
    END
$$;

-- The §1.5 materialisation walk. Iterative (explicit stack) so deep graphs cost no recursion; rows are
-- collected in arrays indexed by discovery order and returned in one query. Node ids are drawn in one
-- batch after validation and are unique within the graph. `query` keeps the envelope's string exactly;
-- a node with a condition or extras gets them merged into its query JSON (existing keys first).
-- Columns beyond the df.nodes ones (ord = pre-order position, parent, depth, path, condition and extra
-- child ids) serve df.explain.
CREATE FUNCTION df._flatten(p_envelope text)
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

    -- ===== PHASE 4: rows in pre-order, with condition/extras merged into the config query =====
    -- Set-based (unnest + hash joins): subscripting large arrays inside a query is quadratic.
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

-- df.start (SPEC §5.0, caller mode). Everything happens in the caller's transaction: a ROLLBACK leaves
-- nothing behind, and any error (validation included) aborts before anything can commit.
CREATE FUNCTION df.start(fut text, label text DEFAULT NULL, database text DEFAULT NULL,
                         transaction_mode text DEFAULT 'caller')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode     text := lower(transaction_mode);
    v_envelope text;
    v_user     text := current_user;
    v_role     regrole;
    v_login    boolean;
    v_super    boolean;
    v_ids      varchar(8)[];
    v_types    text[];
    v_queries  text[];
    v_names    text[];
    v_lefts    varchar(8)[];
    v_rights   varchar(8)[];
    v_options  jsonb[];
    v_vars     jsonb;
    v_id       varchar(8);
    v_attempt  integer := 0;
BEGIN
    -- ===== GUARD: arguments =====
    IF v_mode IS NULL OR v_mode NOT IN ('caller', 'new') THEN
        RAISE EXCEPTION 'invalid transaction_mode "%" for df.start(): expected ''caller'' or ''new''',
            coalesce(transaction_mode, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF v_mode = 'new' THEN
        IF df._in_workflow() THEN
            RAISE EXCEPTION 'df.start() with transaction_mode => ''new'' cannot be called inside a workflow - a df.sql() node already runs as a single autocommitted statement, so a plain df.start() there is already independent of any caller transaction'
                USING ERRCODE = '0A000';
        END IF;
        -- pg_durable opens a loopback session from inside the backend; without an extension we cannot.
        RAISE EXCEPTION 'df.start() with transaction_mode => ''new'' is not supported by pgflare'
            USING ERRCODE = '0A000',
                  DETAIL = 'It needs a second database session, which pg_durable opens from inside the server; pgflare installs without an extension and cannot.',
                  HINT = 'Use the default transaction_mode => ''caller'' and commit your transaction, or call df.start() from a separate connection in autocommit mode; either way the start survives a later rollback of other work.';
    END IF;
    IF fut IS NULL THEN
        RAISE EXCEPTION 'df.start(): fut must not be NULL' USING ERRCODE = '22004';
    END IF;

    -- ===== PHASE 1: parse (§1.4, strict) =====
    v_envelope := df._ensure(fut, true);

    -- ===== GUARD: database, identity (§5.0, §6.1) =====
    IF database IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = database) THEN
            RAISE EXCEPTION 'database "%" does not exist', database USING ERRCODE = '3D000';
        END IF;
        IF database <> current_database() THEN
            RAISE EXCEPTION 'df.start(): database "%" is not supported: pgflare runs workflow steps in the database that holds schema df ("%")',
                database, current_database()
                USING ERRCODE = '0A000',
                      HINT = format('Install pgflare in database %I and call df.start() there, or omit the database argument.', database);
        END IF;
    END IF;

    SELECT r.rolcanlogin, r.rolsuper INTO v_login, v_super
      FROM pg_catalog.pg_roles r WHERE r.rolname = v_user;
    IF NOT coalesce(v_login, false) THEN
        RAISE EXCEPTION 'current_user "%" does not have LOGIN privilege. The background worker must connect as this role to execute SQL. Grant LOGIN to this role or call df.start() as a role with LOGIN.',
            v_user USING ERRCODE = '42501';
    END IF;
    IF v_super AND lower(df._setting('enable_superuser_instances', 'off')) NOT IN ('on', 'true', 'yes', '1') THEN
        RAISE EXCEPTION 'pg_durable: superuser instances are disabled. current_user "%" is a superuser, but pg_durable.enable_superuser_instances is off. Set pg_durable.enable_superuser_instances = on to allow this.',
            v_user USING ERRCODE = '42501';
    END IF;
    v_role := quote_ident(v_user)::regrole;

    -- ===== PHASE 2: validate and flatten (§1.5); nothing is written before this succeeds =====
    SELECT array_agg(f.id ORDER BY f.ord), array_agg(f.node_type ORDER BY f.ord),
           array_agg(f.query ORDER BY f.ord), array_agg(f.result_name ORDER BY f.ord),
           array_agg(f.left_node ORDER BY f.ord), array_agg(f.right_node ORDER BY f.ord),
           array_agg(f.options ORDER BY f.ord)
      INTO v_ids, v_types, v_queries, v_names, v_lefts, v_rights, v_options
      FROM df._flatten(v_envelope) f;

    -- Only the caller's own variables, even for roles that bypass RLS (§6.2); NULL values are skipped.
    SELECT coalesce(jsonb_object_agg(v.name, v.value) FILTER (WHERE v.value IS NOT NULL), '{}'::jsonb)
      INTO v_vars
      FROM df.vars v WHERE v.owner = v_role;

    -- ===== PHASE 3: reserve the instance id (re-rolled on collision, below RLS) =====
    LOOP
        v_attempt := v_attempt + 1;
        INSERT INTO df.instances AS i (id, label, root_node, submitted_by, database, vars)
        VALUES (df._new_id(), label, v_ids[1], v_role, database, v_vars)
        ON CONFLICT (id) DO NOTHING
        RETURNING i.id INTO v_id;
        EXIT WHEN v_id IS NOT NULL;
        IF v_attempt >= 10 THEN
            RAISE EXCEPTION 'Failed to create instance: exhausted 10 attempts to generate a collision-free ID'
                USING ERRCODE = '23505';
        END IF;
    END LOOP;

    -- ===== PHASE 4: nodes, root first; the root is due now so a worker can claim it =====
    INSERT INTO df.nodes (id, instance_id, node_type, query, result_name, left_node, right_node,
                          submitted_by, database, run_at, options)
    SELECT u.id, v_id, u.node_type, u.query, u.result_name, u.left_node, u.right_node,
           v_role, database, CASE WHEN u.n = 1 THEN now() END, u.options
      FROM unnest(v_ids, v_types, v_queries, v_names, v_lefts, v_rights, v_options)
               WITH ORDINALITY AS u(id, node_type, query, result_name, left_node, right_node, options, n)
     ORDER BY u.n;

    -- ===== PHASE 5: hand off; the notification is delivered only if the caller commits =====
    BEGIN
        PERFORM pg_notify('pgflare_ready', v_id);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'failed to start durable function: %', SQLERRM USING ERRCODE = SQLSTATE;
    END;

    RETURN v_id;
END
$$;

GRANT EXECUTE ON FUNCTION df.start(text, text, text, text) TO PUBLIC;
