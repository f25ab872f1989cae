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
