-- 0009_grants: df.grant_usage / df.revoke_usage (SPEC §6.2), set up a role to use pgflare.
--
-- The API functions run as the caller (SECURITY INVOKER, so RLS applies), so a role needs USAGE on df,
-- EXECUTE on the public functions and the internal helpers they call, and column-level table grants.
-- Engine internals (df._claim, df._apply, df._lock_and_load) are never granted: only the worker runs them.

CREATE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean) RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'df'
       -- engine internals: only the worker (the schema owner) runs them
       AND p.proname NOT IN ('_apply', '_lock_and_load', '_claim', '_usage_functions')
       AND (p_include_http OR p.proname NOT IN ('http', 'http_multipart'))
       AND (p_with_grant OR p.proname NOT IN ('metrics', 'grant_usage', 'revoke_usage'))
$$;

CREATE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
    v_fn regprocedure;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA df TO %I%s', p_role, v_opt);
    FOR v_fn IN SELECT * FROM df._usage_functions(include_http, with_grant) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I%s', v_fn, p_role, v_opt);
    END LOOP;
    EXECUTE format('GRANT SELECT, UPDATE (status, updated_at), INSERT (id, label, root_node, submitted_by, database, vars) ON df.instances TO %I%s', p_role, v_opt);
    -- UPDATE (run_at): df.cancel withdraws queued work, df.signal wakes a waiting node. The engine runs
    -- only leaves it activated itself (status running, a live scope), so a hand-set run_at does nothing.
    EXECUTE format('GRANT SELECT, INSERT (id, instance_id, node_type, query, result_name, left_node, right_node, submitted_by, database, run_at, options), UPDATE (run_at) ON df.nodes TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (instance_id, signal_name, payload, submitted_by) ON df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.scopes, df.events TO %I%s', p_role, v_opt);
    RAISE NOTICE 'pg_durable: granted df usage privileges to "%"', p_role;
END
$$;

CREATE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN SELECT * FROM df._usage_functions(true, true) LOOP
        BEGIN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I CASCADE', v_fn, p_role);
        EXCEPTION WHEN insufficient_privilege THEN
            NULL; -- the sensitive functions may never have been granted by this role
        END;
    END LOOP;
    EXECUTE format('REVOKE ALL ON df.instances, df.nodes, df.vars, df.signals, df.scopes, df.events FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA df FROM %I CASCADE', p_role);
    RAISE NOTICE 'pg_durable: revoked df usage privileges granted by "%" from "%"', current_user, p_role;
END
$$;

REVOKE EXECUTE ON FUNCTION df.grant_usage(text, boolean, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION df.revoke_usage(text) FROM PUBLIC;
