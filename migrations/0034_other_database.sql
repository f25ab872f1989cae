-- 0034_other_database: df.start(…, database => 'other') runs the graph's steps in another database of the
-- same server (issue 16 item 5), as pg_durable does, instead of refusing it with 0A000.
--
--   df.start   as 0030, except that a database other than the current one is accepted (3D000 still for
--              one that does not exist) and written into every node's options as {"database": "<name>"};
--              database => current_database() is the current database, as before.
--
-- The worker runs such an instance's SQL steps over its connection to that database, on the lease path,
-- with a marker row in that database for exactly-once (src/engine/executors/other-database.ts). Where it
-- has no connection, or connects there as another role than the instance's owner, the step fails with
-- 08001 or 42501 and a message naming PGFLARE_DATABASE_URL_<NAME>.

CREATE OR REPLACE FUNCTION df.start(fut text, label text DEFAULT NULL, database text DEFAULT NULL,
                         transaction_mode text DEFAULT 'caller')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode     text := lower(transaction_mode);
    v_envelope text;
    v_user     text := current_user;
    v_as       text := nullif(current_setting('pgflare.start_as', true), '');
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
    v_other    jsonb;
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
        IF fut IS NULL THEN
            RAISE EXCEPTION 'df.start(): fut must not be NULL' USING ERRCODE = '22004';
        END IF;
        -- A second session started by df._start_new commits the start on its own (0030).
        RETURN df._start_new(fut, label, database, current_user::text);
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
        -- Another database of this server (0031): the steps run there on the worker's connection to it
        -- (docs/ARCHITECTURE.md, "Steps in another database"); every node carries it in its options,
        -- which the claim returns, so the worker knows without a read.
        IF database <> current_database() THEN
            v_other := jsonb_build_object('database', database);
        END IF;
    END IF;

    -- transaction_mode => 'new' (0030): df._start_new's loopback session runs as the owner of schema df and
    -- starts the instance for the caller it checked. Nobody else may start as another role.
    IF v_as IS NOT NULL THEN
        IF current_user::text IS DISTINCT FROM (SELECT n.nspowner::regrole::text FROM pg_catalog.pg_namespace n WHERE n.nspname = 'df') THEN
            RAISE EXCEPTION 'pgflare.start_as is set, but only the owner of schema df may start an instance for another role'
                USING ERRCODE = '42501', HINT = 'RESET pgflare.start_as; it is set by df.start(…, transaction_mode => ''new'') on its own session.';
        END IF;
        v_user := v_as;
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
           v_role, database, CASE WHEN u.n = 1 THEN now() END,
           CASE WHEN v_other IS NULL THEN u.options ELSE coalesce(u.options, '{}'::jsonb) || v_other END
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


COMMENT ON FUNCTION df.start(text, text, text, text) IS 'Validates a workflow graph and starts it as an instance owned by current_user, in the caller''s transaction (transaction_mode => ''caller'') or committed on a loopback session through dblink (''new''); returns the instance id. Steps run later, on the worker, as that owner; with database => another database of the server, over the worker''s connection to it.';
