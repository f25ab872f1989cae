-- 0030_connection_limits: pg_durable's pg_durable.max_user_connections and pg_durable.execution_acquire_timeout
-- on top of 0017's per-role limits (issue 16 item 6).
--
--   df._role_setting(role, name)   a setting as it applies to that role's sessions in this database:
--                                  ALTER ROLE … IN DATABASE, ALTER ROLE, ALTER DATABASE (read live from
--                                  pg_db_role_setting), then the server's value (postgresql.conf, as this
--                                  session sees it)
--   df._step_limit(role)           the role's limit: df.set_role_limit's row, else max_user_connections
--   df._limits_in_force()          whether any limit applies (the claim's fast path is taken when not)
--   df._claim, df._claim_many      as 0022/0023, with those limits, and the acquire timeout: a SQL step of a
--                                  full role that has been ready for longer than execution_acquire_timeout
--                                  seconds is failed, and its instance with it, with pg_durable's message
--
-- Unset, max_user_connections means no limit (pg_durable's default is 10): the worker pool already bounds
-- concurrency, and a limit in force moves every claim onto the slower limited path (0017). The timeout
-- applies to a max_user_connections limit (default 30 s) and to a df.set_role_limit limit only when the
-- setting is given. A value that is not a positive integer is ignored (a claim must never fail on it).
--
-- Error codes: none raised to callers. PFL01 is 0017's internal code.

CREATE FUNCTION df._role_setting(p_role oid, p_name text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT nullif(btrim(substr(c, length(p_name) + 2)), '')
           FROM pg_db_role_setting s, unnest(s.setconfig) c
          WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
            AND s.setrole IN (0, p_role)
            AND starts_with(c, p_name || '=')
          -- PostgreSQL's precedence: role in this database, role, database.
          ORDER BY s.setrole = 0, s.setdatabase = 0
          LIMIT 1),
        nullif(btrim(current_setting(p_name, true)), ''))
$$;

-- A positive integer setting of p_role, else NULL (unset, or not a number).
CREATE FUNCTION df._role_setting_int(p_role oid, p_name text, p_max integer) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(v::numeric, p_max)::integer FROM df._role_setting(p_role, p_name) v
     WHERE v ~ '^[0-9]{1,9}$' AND v::integer >= 1
$$;

CREATE FUNCTION df._step_limit(p_role regrole) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT l.max_concurrent_steps FROM df.role_limits l WHERE l.role = p_role),
                    df._role_setting_int(p_role::oid, 'pg_durable.max_user_connections', 1000))
$$;

CREATE FUNCTION df._limits_in_force() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM df.role_limits)
        OR coalesce(current_setting('pg_durable.max_user_connections', true), '') <> ''
        OR EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c
                    WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                      AND starts_with(c, 'pg_durable.max_user_connections='))
$$;

-- The step (p_instance_id, p_node_id) of p_role waited too long for a slot: fail it and its instance with
-- pg_durable's message, if the instance is still active and its row can be had without waiting (the claim
-- holds the node row and must not wait for the instance row). True when it was failed.
CREATE FUNCTION df._fail_unslotted(p_instance_id varchar, p_node_id varchar, p_role regrole, p_limit integer,
                                   p_timeout integer, p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_msg text := format('pg_durable: connection limit reached (max_user_connections=%s). Timed out after %ss waiting for an available execution slot.',
                         p_limit, p_timeout);
BEGIN
    PERFORM 1 FROM df.nodes n
     WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM 1 FROM df.instances i
         WHERE i.id = p_instance_id AND i.status IN ('pending', 'running')
           FOR NO KEY UPDATE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;  -- a checkpoint holds it: the next claim looks again
    END;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM df._apply(p_instance_id, jsonb_build_object(
        'nodes', jsonb_build_array(jsonb_build_object('id', p_node_id, 'status', 'failed', 'result', to_jsonb(v_msg)::text,
                                                      'run_at', NULL, 'nowait', false)),
        'instance', jsonb_build_object('status', 'failed', 'output', v_msg),
        'events', jsonb_build_array(jsonb_build_object('node_id', p_node_id, 'kind', 'failed', 'attempt', 1, 'detail', v_msg))));
    -- The instance's other ready rows are withdrawn when claimed (their instance is no longer active).
    RETURN true;
END
$$;

-- 0022's df._claim (same signature and columns): the limited path whenever df._limits_in_force(), each
-- role's limit from df._step_limit, and the acquire timeout when a role is full.
CREATE OR REPLACE FUNCTION df._claim(p_now timestamptz, p_instance_id varchar DEFAULT NULL, p_node_id varchar DEFAULT NULL)
RETURNS TABLE (
    instance_id varchar, id varchar, node_type text, query text, result_name text, status text, stamp text,
    state jsonb, attempts integer, run_at timestamptz, options jsonb, instance_status text, root_node varchar,
    label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean,
    superuser_gate text, named jsonb, scope_status text, input text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v df.nodes%ROWTYPE;
    v_scope text;
    v_full oid[] := '{}';
    v_limit integer;
    v_timeout integer;
    v_found boolean := false;
BEGIN
    IF NOT df._limits_in_force() THEN
        -- No limits (the usual case): the claim and what comes with it are one statement.
        IF p_instance_id IS NULL THEN
            RETURN QUERY
            WITH c AS (SELECT * FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
                   c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
                   i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
                   coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
                   s.named, s.status, i.input::text
              FROM c
              -- Probes by primary key as correlated subqueries (OFFSET 0: never pulled up into a join).
              JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = c.instance_id OFFSET 0) i ON true
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
              LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                                  WHERE x.instance_id = c.instance_id
                                    AND x.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                                 OFFSET 0) s ON true;
        ELSE
            RETURN QUERY
            WITH c AS (SELECT * FROM df.nodes n
                        WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
                          FOR UPDATE SKIP LOCKED)
            SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
                   c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
                   i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
                   coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
                   s.named, s.status, i.input::text
              FROM c
              -- Probes by primary key as correlated subqueries (OFFSET 0: never pulled up into a join).
              JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = c.instance_id OFFSET 0) i ON true
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
              LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                                  WHERE x.instance_id = c.instance_id
                                    AND x.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                                 OFFSET 0) s ON true;
        END IF;
        RETURN;
    ELSE
        -- Bounded: each round excludes one more full role; past that, nothing is claimed this time.
        FOR v_round IN 1 .. 16 LOOP
            BEGIN
                IF p_instance_id IS NOT NULL THEN
                    SELECT * INTO v FROM df.nodes n
                     WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
                       FOR UPDATE SKIP LOCKED;
                ELSIF v_round = 1 THEN
                    SELECT * INTO v FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
                ELSE
                    SELECT * INTO v FROM df.nodes n
                     WHERE n.run_at <= p_now AND n.submitted_by::oid <> ALL (v_full)
                     ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
                END IF;
                IF NOT FOUND THEN
                    EXIT;
                END IF;
                v_limit := df._step_limit(v.submitted_by);
                IF v_limit IS NOT NULL AND NOT df._take_slot(v.submitted_by, v_limit, p_now) THEN
                    RAISE EXCEPTION 'role at its step limit' USING ERRCODE = 'PFL01';  -- internal: undo the row lock and the slot
                END IF;
                v_found := true;
                EXIT;
            EXCEPTION WHEN SQLSTATE 'PFL01' THEN
                v_full := v_full || v.submitted_by::oid;
                -- A SQL step that has waited for a slot longer than execution_acquire_timeout fails (0030):
                -- default 30 s under max_user_connections, only when set under df.set_role_limit.
                IF v.node_type = 'SQL' THEN
                    v_timeout := df._role_setting_int(v.submitted_by::oid, 'pg_durable.execution_acquire_timeout', 1000000000);
                    IF v_timeout IS NULL AND NOT EXISTS (SELECT 1 FROM df.role_limits l WHERE l.role = v.submitted_by) THEN
                        v_timeout := 30;
                    END IF;
                    IF v_timeout IS NOT NULL AND v.run_at < p_now - make_interval(secs => v_timeout) THEN
                        PERFORM df._fail_unslotted(v.instance_id, v.id, v.submitted_by, v_limit, v_timeout, p_now);
                    END IF;
                END IF;
                EXIT WHEN p_instance_id IS NOT NULL;
            END;
        END LOOP;
    END IF;
    IF NOT v_found THEN
        RETURN;
    END IF;
    -- The scope a stamp belongs to: everything before its last '::'.
    v_scope := substring(v.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$');
    RETURN QUERY
    SELECT v.instance_id, v.id, v.node_type, v.query, v.result_name, v.status, v.status_details ->> 'execution_id',
           v.state, v.attempts, v.run_at, v.options, i.status, i.root_node, i.label, i.vars, i.generation,
           i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
           df._setting('enable_superuser_instances', 'off'), s.named, s.status, i.input::text
      FROM df.instances i
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
      LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                          WHERE x.instance_id = v.instance_id AND x.scope_id = v_scope OFFSET 0) s ON true
     WHERE i.id = v.instance_id;
END
$$;


-- 0023's df._claim_many: with any limit in force, df._claim's one row.
CREATE OR REPLACE FUNCTION df._claim_many(p_now timestamptz, p_limit integer)
RETURNS TABLE (
    instance_id varchar, id varchar, node_type text, query text, result_name text, status text, stamp text,
    state jsonb, attempts integer, run_at timestamptz, options jsonb, instance_status text, root_node varchar,
    label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean,
    superuser_gate text, named jsonb, scope_status text, input text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    IF df._limits_in_force() OR p_limit <= 1 THEN
        RETURN QUERY SELECT * FROM df._claim(p_now);
        RETURN;
    END IF;
    RETURN QUERY
    WITH c AS (SELECT * FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
           c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
           i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
           coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
           s.named, s.status, i.input::text
      FROM c
      -- Probes by primary key, as in df._claim (0022).
      JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = c.instance_id OFFSET 0) i ON true
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
      LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                          WHERE x.instance_id = c.instance_id
                            AND x.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                         OFFSET 0) s ON true
     ORDER BY c.run_at, c.instance_id, c.id;
END
$$;


-- Engine internals: only the worker (the owner of schema df) runs them.
REVOKE ALL ON FUNCTION df._role_setting(oid, text), df._role_setting_int(oid, text, integer), df._step_limit(regrole),
    df._limits_in_force(), df._fail_unslotted(varchar, varchar, regrole, integer, integer, timestamptz) FROM PUBLIC;

COMMENT ON FUNCTION df._role_setting(oid, text) IS
    'Engine (worker only). A setting as it applies to a role''s sessions in this database: ALTER ROLE … IN DATABASE, ALTER ROLE, ALTER DATABASE (pg_db_role_setting, read live), then the server''s value as this session sees it.';
COMMENT ON FUNCTION df._role_setting_int(oid, text, integer) IS
    'Engine (worker only). df._role_setting as a positive integer capped at p_max, or NULL when unset or not a positive integer.';
COMMENT ON FUNCTION df._step_limit(regrole) IS
    'Engine (worker only). A role''s concurrent step limit: its df.set_role_limit row, else pg_durable.max_user_connections for that role; NULL = no limit.';
COMMENT ON FUNCTION df._limits_in_force() IS
    'Engine (worker only). Whether any step limit applies (df.role_limits rows or a pg_durable.max_user_connections setting); the claim takes its single-statement path when not.';
COMMENT ON FUNCTION df._fail_unslotted(varchar, varchar, regrole, integer, integer, timestamptz) IS
    'Engine (worker only). Fails a SQL step that waited longer than pg_durable.execution_acquire_timeout for a slot, and its instance, with pg_durable''s "connection limit reached" message; skips (false) when the instance row is held.';
COMMENT ON FUNCTION df._claim(timestamptz, varchar, varchar) IS
    'Engine (worker only). Claims the oldest ready df.nodes row (or the given one) FOR UPDATE SKIP LOCKED and returns it with what running it needs from its instance, owner role and scope. Locks only the node row; with step limits in force (df.set_role_limit, pg_durable.max_user_connections) it takes a slot (df._take_slot), skips full roles, and fails a SQL step that waited past pg_durable.execution_acquire_timeout (df._fail_unslotted). Its RETURNS TABLE is the claim''s column list: df._claim_many, the prepared wake-up claim and ClaimedRow (src/engine/queries/claim.ts) are tested against it.';
COMMENT ON FUNCTION df._claim_many(timestamptz, integer) IS
    'Engine (worker only). Claims up to p_limit ready df.nodes rows for a batch, oldest first, with df._claim''s columns; with step limits in force or p_limit <= 1 it is df._claim. Locks only the node rows.';


-- ===== transaction_mode => 'new' (issue 16 item 4) =====
--
--   df._start_new(fut, label, database, caller)   SECURITY DEFINER (owner of schema df): takes one of
--       pg_durable.max_new_transaction_starts launch slots (session advisory locks (1346982470, slot),
--       polled every 100 ms for up to pg_durable.new_transaction_start_timeout seconds), opens a dblink
--       loopback session on the foreign server pgflare_loopback (as the owner, through the owner's user
--       mapping), runs df.start there for the caller (setting pgflare.start_as, honoured only for the
--       owner of schema df), and closes it. The start commits on that session: it survives the caller's
--       ROLLBACK, and is owned by the caller.
--   df.start                                      'new' calls df._start_new; 'caller' as before, plus
--                                                 pgflare.start_as for the loopback session
--
-- Credentials: the password lives in the owner's user mapping (readable by the owner and superusers
-- only); no role but the owner can open the loopback, and df._start_new starts only for the role the
-- calling session is (session_user, or a role it is a member of).
--
-- Error codes: 0A000 (dblink or the loopback server missing: what to install or configure), 42501 (the
-- caller is not the session's role), 53400 (no launch slot in time), others from the loopback's df.start
-- (its SQLSTATE kept, the message prefixed "df.start() on new transaction failed: ").

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
        IF database <> current_database() THEN
            RAISE EXCEPTION 'df.start(): database "%" is not supported: pgflare runs workflow steps in the database that holds schema df ("%")',
                database, current_database()
                USING ERRCODE = '0A000',
                      HINT = format('Install pgflare in database %I and call df.start() there, or omit the database argument.', database);
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


-- Runs p_sql (one text column, one row) on a dblink loopback session as the owner of schema df, with
-- pgflare.start_as = p_caller there; p_slots takes a launch slot first. Called only from the SECURITY
-- DEFINER functions below (so as the owner), after they checked p_caller.
CREATE FUNCTION df._loopback_run(p_caller text, p_sql text, p_what text, p_slots boolean) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dblink   text;
    v_max      integer;
    v_timeout  numeric;
    v_deadline timestamptz;
    v_slot     integer := -1;
    v_conn     text := 'pgflare_new_' || pg_backend_pid();
    v_id       text;
    v_state    text;
    v_msg      text;
BEGIN
    SELECT n.nspname INTO v_dblink FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink';
    IF v_dblink IS NULL THEN
        RAISE EXCEPTION '% with transaction_mode => ''new'' needs the dblink extension, which is not installed in database "%"', p_what, current_database()
            USING ERRCODE = '0A000',
                  HINT = 'Run CREATE EXTENSION dblink (a superuser, or your provider''s extension tool), then create the loopback server pgflare_loopback (docs/SQL.md, "Out-of-band starts and signals"). Or use the default transaction_mode => ''caller'' and commit.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_foreign_server s WHERE s.srvname = 'pgflare_loopback')
       OR NOT EXISTS (SELECT 1 FROM pg_user_mappings m WHERE m.srvname = 'pgflare_loopback' AND m.umuser IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))) THEN
        RAISE EXCEPTION '% with transaction_mode => ''new'' needs the foreign server pgflare_loopback and a user mapping for %, the owner of schema df', p_what, current_user
            USING ERRCODE = '0A000',
                  HINT = format('CREATE SERVER pgflare_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host ''…'', port ''…'', dbname %L); GRANT USAGE ON FOREIGN SERVER pgflare_loopback TO %I; CREATE USER MAPPING FOR %I SERVER pgflare_loopback OPTIONS (user %L, password ''…'') (docs/SQL.md, "Out-of-band starts and signals").',
                                current_database(), current_user, current_user, current_user);
    END IF;

    -- Admission (starts only): one of max_new_transaction_starts slots, as pg_durable takes them.
    v_max := coalesce(df._role_setting_int(0, 'pg_durable.max_new_transaction_starts', 1000), 2);
    v_timeout := coalesce((SELECT v::numeric FROM nullif(btrim(current_setting('pg_durable.new_transaction_start_timeout', true)), '') v
                            WHERE v ~ '^[0-9]+(\.[0-9]+)?$'), 5);
    v_deadline := clock_timestamp() + make_interval(secs => v_timeout);
    LOOP
        EXIT WHEN NOT p_slots;
        FOR s IN 0 .. v_max - 1 LOOP
            IF pg_try_advisory_lock(1346982470, s) THEN
                v_slot := s;
                EXIT;
            END IF;
        END LOOP;
        EXIT WHEN v_slot >= 0;
        IF clock_timestamp() >= v_deadline THEN
            RAISE EXCEPTION 'pg_durable: transaction_mode => ''new'' launch limit reached (max_new_transaction_starts=%). Timed out after %s waiting for a launch slot before opening the loopback session.',
                v_max, v_timeout USING ERRCODE = '53400';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;

    BEGIN
        EXECUTE format('SELECT %I.dblink_connect(%L, %L)', v_dblink, v_conn, 'pgflare_loopback');
        EXECUTE format('SELECT %I.dblink_exec(%L, %L)', v_dblink, v_conn,
                       format('SET application_name = %L; SET df.in_workflow = %L; SET lock_timeout = 30000; SET statement_timeout = 30000; SET pgflare.start_as = %L',
                              'pg_durable:backend:new-transaction', 'false', p_caller));
        EXECUTE format('SELECT id FROM %I.dblink(%L, %L) AS t(id text)', v_dblink, v_conn, p_sql) INTO v_id;
        EXECUTE format('SELECT %I.dblink_disconnect(%L)', v_dblink, v_conn);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
        BEGIN
            EXECUTE format('SELECT %I.dblink_disconnect(%L)', v_dblink, v_conn);
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- never connected
        END;
        IF v_slot >= 0 THEN
            PERFORM pg_advisory_unlock(1346982470, v_slot);
        END IF;
        IF v_msg LIKE '%lock timeout%' THEN
            RAISE EXCEPTION 'pg_durable: transaction_mode => ''new'' launch hit lock_timeout after 30000ms (%)', v_msg USING ERRCODE = v_state;
        ELSIF v_msg LIKE '%statement timeout%' THEN
            RAISE EXCEPTION 'pg_durable: transaction_mode => ''new'' launch hit statement_timeout after 30000ms (%)', v_msg USING ERRCODE = v_state;
        END IF;
        RAISE EXCEPTION '% on new transaction failed: %', p_what, v_msg USING ERRCODE = v_state;
    END;
    IF v_slot >= 0 THEN
        PERFORM pg_advisory_unlock(1346982470, v_slot);
    END IF;
    RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION df._loopback_run(text, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION df._start_new(p_fut text, p_label text, p_database text, p_caller text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (p_caller = session_user::text OR pg_has_role(session_user, p_caller, 'MEMBER')) THEN
        RAISE EXCEPTION 'df.start() with transaction_mode => ''new'': current_user "%" is not a role of this session (session_user "%")', p_caller, session_user
            USING ERRCODE = '42501', HINT = 'Call it as the role itself, not from a SECURITY DEFINER function of another role.';
    END IF;
    RETURN df._loopback_run(p_caller, format('SELECT df.start(%L, %L, %L)', p_fut, p_label, p_database), 'df.start()', true);
END
$$;
REVOKE ALL ON FUNCTION df._start_new(text, text, text, text) FROM PUBLIC;
-- ===== df.signal(…, transaction_mode) (issue 16 item 4) =====
-- df.signal(id, name, data) stays transactional (delivered when the caller commits). The overload with a
-- transaction_mode delivers at once with 'new': committed on a loopback session (df._signal_new), so a
-- worker sees it while the caller's transaction or DO block goes on. Inside a workflow step, 'new' is the
-- plain call (the step commits on its own).
CREATE OR REPLACE FUNCTION df.signal(instance_id text, signal_name text, signal_data text DEFAULT '{}') RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner  regrole;
    v_status text;
    v_woken  integer;
    v_as     text := nullif(current_setting('pgflare.start_as', true), '');
BEGIN
    IF signal.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF signal.signal_name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = '22023';
    END IF;

    -- On df._signal_new's loopback session (0030) the owner of schema df signals for the caller it checked:
    -- only that caller's instances are found, as RLS would find them for the caller.
    IF v_as IS NOT NULL AND current_user::text IS DISTINCT FROM (SELECT n.nspowner::regrole::text FROM pg_catalog.pg_namespace n WHERE n.nspname = 'df') THEN
        RAISE EXCEPTION 'pgflare.start_as is set, but only the owner of schema df may signal for another role' USING ERRCODE = '42501';
    END IF;
    SELECT i.submitted_by, i.status INTO v_owner, v_status
    FROM df.instances AS i WHERE i.id = signal.instance_id
      AND (v_as IS NULL OR i.submitted_by::oid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = v_as));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', signal.instance_id
            USING ERRCODE = 'P0002';
    END IF;

    -- Payload: JSON when the text is JSON, else the text as a JSON string ('approve' -> "approve").
    INSERT INTO df.signals (instance_id, signal_name, payload, submitted_by)
    VALUES (signal.instance_id, signal.signal_name,
            coalesce(df._jsonb_or_null(signal.signal_data), to_jsonb(signal.signal_data)),
            v_owner);

    -- Only a wait that is already subscribed (a running SIGNAL node, in any scope of the instance)
    -- receives the signal: make it claimable now and wake the workers. Earlier/later signals are the
    -- engine's to drop (§3.10).
    IF v_status IN ('pending', 'running') THEN
        UPDATE df.nodes AS n SET run_at = now()
        WHERE n.instance_id = signal.instance_id
          AND n.node_type = 'SIGNAL'
          AND n.status = 'running'
          AND df._jsonb_or_null(n.query) ->> 'signal_name' = signal.signal_name;
        GET DIAGNOSTICS v_woken = ROW_COUNT;
        IF v_woken > 0 THEN
            PERFORM pg_notify('pgflare_ready', signal.instance_id);
        END IF;
    END IF;

    RETURN 'OK';
END;
$$;

CREATE FUNCTION df.signal(instance_id text, signal_name text, signal_data text, transaction_mode text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode text := lower(transaction_mode);
BEGIN
    IF v_mode NOT IN ('caller', 'new') THEN
        RAISE EXCEPTION 'invalid transaction_mode "%" for df.signal(): expected ''caller'' or ''new''', transaction_mode USING ERRCODE = '22023';
    END IF;
    IF v_mode = 'caller' OR df._in_workflow() THEN
        RETURN df.signal(signal.instance_id, signal.signal_name, signal.signal_data);
    END IF;
    -- The caller's own checks first (RLS applies here), so their errors read as for a plain df.signal.
    IF signal.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF signal.signal_name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM df.instances i WHERE i.id = signal.instance_id) THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', signal.instance_id USING ERRCODE = 'P0002';
    END IF;
    RETURN df._signal_new(signal.instance_id, signal.signal_name, signal.signal_data, current_user::text);
END
$$;
GRANT EXECUTE ON FUNCTION df.signal(text, text, text, text) TO PUBLIC;

CREATE FUNCTION df._signal_new(p_instance_id text, p_name text, p_data text, p_caller text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (p_caller = session_user::text OR pg_has_role(session_user, p_caller, 'MEMBER')) THEN
        RAISE EXCEPTION 'df.signal() with transaction_mode => ''new'': current_user "%" is not a role of this session (session_user "%")', p_caller, session_user
            USING ERRCODE = '42501', HINT = 'Call it as the role itself, not from a SECURITY DEFINER function of another role.';
    END IF;
    RETURN df._loopback_run(p_caller, format('SELECT df.signal(%L, %L, %L)', p_instance_id, p_name, p_data), 'df.signal()', false);
END
$$;
REVOKE ALL ON FUNCTION df._signal_new(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION df.signal(text, text, text, text) IS 'Sends a named signal to an instance of the caller''s: ''caller'' as df.signal(id, name, data), delivered when the caller commits; ''new'' committed at once on a dblink loopback session, so a worker sees it while the caller''s transaction goes on.';
COMMENT ON FUNCTION df._signal_new(text, text, text, text) IS
    'SECURITY DEFINER (owner of schema df). df.signal(…, transaction_mode => ''new''): sends the signal for the calling role on a dblink loopback session (foreign server pgflare_loopback), which commits on its own.';
COMMENT ON FUNCTION df._loopback_run(text, text, text, boolean) IS
    'Engine (owner only). Runs one statement on a dblink loopback session (foreign server pgflare_loopback, the owner''s user mapping) with pgflare.start_as set to the caller, optionally after taking a launch slot; called by df._start_new and df._signal_new.';

-- Roles granted usage before this migration may call them (df.grant_usage grants them from now on: df.start
-- and df.signal call them).
DO $$
DECLARE
    r record;
BEGIN
    -- Delegates (usage with grant option) get them with grant option, so their grants keep working.
    FOR r IN SELECT a.grantee::regrole AS role, bool_or(a.is_grantable) AS delegate
               FROM pg_namespace n, aclexplode(n.nspacl) a
              WHERE n.nspname = 'df' AND a.privilege_type = 'USAGE' AND a.grantee <> n.nspowner AND a.grantee <> 0
              GROUP BY a.grantee LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION df._start_new(text, text, text, text), df._signal_new(text, text, text, text) TO %s%s',
                       r.role, CASE WHEN r.delegate THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
COMMENT ON FUNCTION df._start_new(text, text, text, text) IS
    'SECURITY DEFINER (owner of schema df). df.start(…, transaction_mode => ''new''): takes a launch slot (pg_durable.max_new_transaction_starts, new_transaction_start_timeout), starts the instance for the calling role on a dblink loopback session (foreign server pgflare_loopback, the owner''s user mapping), which commits on its own.';
COMMENT ON FUNCTION df.start(text, text, text, text) IS 'Validates a workflow graph and starts it as an instance owned by current_user, in the caller''s transaction (transaction_mode => ''caller'') or committed on a loopback session through dblink (''new''); returns the instance id. Steps run later, on the worker, as that owner.';
