-- 0015_runners: per-role SECURITY DEFINER step runners (DESIGN 11, issue 7 items 1-2).
--
-- The worker runs a SQL step of another role's instance through that role's runner, a function owned by
-- the role, SECURITY DEFINER, executable only by the owner of schema df (the worker's role). Inside a
-- security-definer function PostgreSQL refuses any change of role or session authorization, so the
-- step's SQL cannot get back to the worker's role; the runner re-checks on entry that it really runs as
-- its owner, so an owner who altered it (SECURITY INVOKER, SET role) gets an error instead.
--
-- df.grant_usage and df.revoke_usage keep whatever earlier migrations made of them (renamed to
-- df._grant_usage_base / df._revoke_usage_base) and add the runner around them.

-- Role → runner. The function name uses the role's OID: role names can be 63 bytes and need quoting.
CREATE TABLE df._runners (
    role oid PRIMARY KEY,
    runner text NOT NULL CHECK (runner ~ '^df\._run_[0-9]+$'),
    created_by oid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON df._runners FROM PUBLIC;

ALTER FUNCTION df._usage_functions(boolean, boolean) RENAME TO _usage_functions_base;
ALTER FUNCTION df.grant_usage(text, boolean, boolean) RENAME TO _grant_usage_base;
ALTER FUNCTION df.revoke_usage(text) RENAME TO _revoke_usage_base;

-- What df.grant_usage grants EXECUTE on: never the runners or the machinery that calls them.
CREATE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean) RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f FROM df._usage_functions_base(p_include_http, p_with_grant) f
      JOIN pg_proc p ON p.oid = f
     WHERE p.proname !~ '^_run_[0-9]+$'
       AND p.proname NOT IN ('_usage_functions_base', '_run_step', '_runner_problem', '_install_runner',
                             -- engine internals added later (0016): only the worker runs them
                             '_node_changes')
       AND (p_with_grant OR p.proname NOT IN ('_grant_usage_base', '_revoke_usage_base'))
    UNION
    -- A delegate (with_grant) runs df.grant_usage/df.revoke_usage, which call these as the delegate.
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p_with_grant AND p.pronamespace = 'df'::regnamespace
       AND p.proname IN ('_usage_functions', '_usage_functions_base', '_install_runner',
                         -- 0013 kept the versions before it under these names; its wrappers call them
                         '_grant_usage_before_0013', '_revoke_usage_before_0013',
                         '_grant_usage_base', '_revoke_usage_base')
$$;

-- Why the worker may not run a step of `p_owner` through a runner, or NULL when it may. The texts for a
-- dropped role and a role without LOGIN are pg_durable's (its steps connect as the owner, SPEC §6.1).
CREATE FUNCTION df._runner_problem(p_owner regrole) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r pg_roles%ROWTYPE;
    v_runner text;
BEGIN
    SELECT * INTO r FROM pg_roles WHERE oid = p_owner::oid;
    IF NOT FOUND THEN
        RETURN format('Failed to connect to database ''%s'' as ''%s''. Error: role "%s" does not exist',
                      current_database(), p_owner::oid, p_owner::oid);
    END IF;
    IF NOT r.rolcanlogin THEN
        RETURN format('Failed to connect to database ''%s'' as ''%s''. Error: role "%s" is not permitted to log in',
                      current_database(), r.rolname, r.rolname);
    END IF;
    IF r.rolsuper THEN
        RETURN format('pgflare: role "%s" is a superuser: its steps run only on a worker that connects as that role (no step runner is made for a superuser, it would let the worker act as one)', r.rolname);
    END IF;
    IF NOT has_schema_privilege(r.oid, 'df', 'USAGE') THEN
        RETURN format('pgflare: role "%s" has no usage on schema df (df.revoke_usage ran, or df.grant_usage never did): its steps are not run', r.rolname);
    END IF;
    IF has_schema_privilege(r.oid, 'df', 'CREATE') THEN
        RETURN format('pgflare: role "%s" has CREATE on schema df, so it could replace its own step runner: its steps are not run. Revoke CREATE ON SCHEMA df from it', r.rolname);
    END IF;
    SELECT x.runner INTO v_runner FROM df._runners x
      JOIN pg_proc p ON p.proname = substr(x.runner, 4) AND p.pronamespace = 'df'::regnamespace AND p.proowner = x.role
     WHERE x.role = r.oid;
    IF v_runner IS NULL THEN
        RETURN format('pgflare: role "%s" has no step runner: the owner of schema df (or a superuser) must run SELECT df.grant_usage(%L)', r.rolname, r.rolname);
    END IF;
    RETURN NULL;
END
$$;

-- The worker's entry point for a step of another role: checks, then calls the role's runner. Raises
-- PF010 with the reason when the step may not run (nothing of the step ran then).
CREATE FUNCTION df._run_step(p_owner regrole, p_sql text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problem text := df._runner_problem(p_owner);
    v_result jsonb;
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = 'PF010';
    END IF;
    EXECUTE format('SELECT %s($1)', (SELECT runner FROM df._runners WHERE role = p_owner::oid)) INTO v_result USING p_sql;
    RETURN v_result;
END
$$;

-- Creates (or re-creates) the runner of `p_role`, owned by it. Returns NULL when done, else why not.
--
-- The caller must be able to create functions in df (its owner, or a superuser) and, unless a superuser,
-- to become p_role: ALTER FUNCTION … OWNER TO needs membership in the new owner (PostgreSQL 16+: with
-- SET), and the new owner needs CREATE on the schema. Membership is granted to the caller only for this
-- transaction if it may grant it (CREATEROLE on PostgreSQL 15, ADMIN OPTION on 16+); CREATE on df is
-- granted to p_role and revoked again in the same transaction, so p_role never holds it.
CREATE FUNCTION df._install_runner(p_role regrole) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $install$
DECLARE
    v_role oid := p_role::oid;
    v_name text := (SELECT rolname FROM pg_roles WHERE oid = v_role);
    v_fn text := format('df._run_%s', v_role);
    v_worker oid := (SELECT nspowner FROM pg_namespace WHERE nspname = 'df');
    v_me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
    v_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    v_member boolean;
    v_granted_member boolean := false;
BEGIN
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    IF v_role = v_worker THEN
        RETURN NULL; -- the worker's own role: its steps run directly, no runner
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE oid = v_role) THEN
        RETURN format('role "%s" is a superuser, and a runner would let the worker act as one', v_name);
    END IF;
    IF has_schema_privilege(v_role, 'df', 'CREATE') THEN
        RETURN format('role "%s" has CREATE on schema df and could replace its own runner', v_name);
    END IF;
    IF NOT v_super AND NOT has_schema_privilege(v_me, 'df', 'CREATE') THEN
        RETURN format('"%s" cannot create functions in schema df (run df.grant_usage as the owner of schema df or a superuser)', current_user);
    END IF;
    IF NOT v_super THEN
        v_member := CASE WHEN current_setting('server_version_num')::int >= 160000
                         THEN pg_has_role(v_me, v_role, 'SET') ELSE pg_has_role(v_me, v_role, 'MEMBER') END;
        IF NOT v_member THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', v_name, current_user);
                v_granted_member := true;
            EXCEPTION WHEN insufficient_privilege THEN
                RETURN format('"%s" is not a member of "%s" and may not grant itself membership (GRANT %I TO %I, or CREATEROLE on PostgreSQL 15)',
                              current_user, v_name, v_name, current_user);
            END;
        END IF;
    END IF;

    EXECUTE format('DROP FUNCTION IF EXISTS %s(text)', v_fn);
    EXECUTE format($f$
CREATE FUNCTION %1$s(p_sql text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $run$
-- pgflare step runner of the role with OID %2$s, created by df.grant_usage. Do not alter it: it refuses
-- to run once it does not run as that role.
DECLARE
    c refcursor;
    r record;
    v_rows text[] := '{}';
    v_path text;
BEGIN
    -- Only as its owner, in a security-definer context, called by the worker's role. SECURITY INVOKER
    -- makes current_user the caller; a SET role clause shows in the role setting.
    IF (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) IS DISTINCT FROM %2$s::oid
       OR pg_catalog.current_setting('role') <> 'none'
       OR NOT pg_catalog.pg_has_role(session_user, (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'df'), 'MEMBER') THEN
        RAISE EXCEPTION 'pgflare: step runner %1$s refused to run: it must run as role %2$s (SECURITY DEFINER, unaltered) and be called by the worker; current_user is "%%", session_user "%%". Re-create it with df.grant_usage',
            current_user, session_user USING ERRCODE = '42501';
    END IF;
    -- The owner's own default search_path, as a session of its own would have it (SPEC §3.1 runs each
    -- step on a connection authenticated as the owner): role+database, role, database settings, else
    -- the server default. "$user" resolves to the owner here.
    SELECT pg_catalog.substr(x, 13) INTO v_path
      FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) x
     WHERE x LIKE 'search_path=%%'
       AND ((s.setrole = %2$s AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))
            OR (s.setrole = 0 AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))
     ORDER BY s.setrole = 0, s.setdatabase = 0
     LIMIT 1;
    IF v_path IS NULL THEN
        -- The worker's reset value is the server default unless the worker has a role setting of its own.
        SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) x
                                  WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
                                    AND x LIKE 'search_path=%%')
                    THEN boot_val ELSE reset_val END
          INTO v_path FROM pg_catalog.pg_settings WHERE name = 'search_path';
    END IF;
    PERFORM pg_catalog.set_config('search_path', v_path, true);
    -- Row-returning statements become a cursor whose rows are all fetched here, as the owner; the worker
    -- then FETCHes the exhausted cursor for its column names and types only (no row is computed then).
    c := 'pgflare_step_rows';
    BEGIN
        OPEN c FOR EXECUTE p_sql;
    EXCEPTION WHEN invalid_cursor_definition THEN
        c := NULL; -- returns no rows (DML without RETURNING, DDL, SET, …): nothing ran yet
    END;
    IF c IS NULL THEN
        EXECUTE p_sql;
        c := 'pgflare_step_rows';
        OPEN c FOR SELECT WHERE false;
    ELSE
        LOOP
            FETCH c INTO r;
            EXIT WHEN NOT FOUND;
            v_rows := v_rows OPERATOR(pg_catalog.||) r::text;
        END LOOP;
    END IF;
    -- Deferred triggers the step queued would fire at COMMIT, as the worker: fire them here, as the
    -- owner, then defer again (df's own foreign keys are INITIALLY DEFERRED).
    SET CONSTRAINTS ALL IMMEDIATE;
    SET CONSTRAINTS ALL DEFERRED;
    RETURN pg_catalog.to_jsonb(v_rows);
END
$run$
$f$, v_fn, v_role);
    EXECUTE format('GRANT CREATE ON SCHEMA df TO %I', v_name);
    EXECUTE format('ALTER FUNCTION %s(text) OWNER TO %I', v_fn, v_name);
    -- After the owner change: an entry for the old owner would have become the new owner's.
    EXECUTE format('REVOKE ALL ON FUNCTION %s(text) FROM PUBLIC', v_fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s(text) TO %s', v_fn, v_worker::regrole);
    EXECUTE format('REVOKE CREATE ON SCHEMA df FROM %I', v_name);
    IF v_granted_member THEN
        EXECUTE format('REVOKE %I FROM %I', v_name, current_user);
    END IF;
    INSERT INTO df._runners (role, runner, created_by) VALUES (v_role, v_fn, v_me)
        ON CONFLICT (role) DO UPDATE SET runner = EXCLUDED.runner, created_by = EXCLUDED.created_by, created_at = now();
    RETURN NULL;
END
$install$;

CREATE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_why text;
BEGIN
    PERFORM df._grant_usage_base(p_role, include_http, with_grant);
    v_why := df._install_runner(quote_ident(p_role)::regrole);
    IF v_why IS NOT NULL THEN
        RAISE WARNING 'pgflare: no step runner for "%": %; its SQL steps will not run until the owner of schema df runs df.grant_usage(%)',
            p_role, v_why, quote_literal(p_role);
    END IF;
END
$$;

CREATE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role oid := (SELECT oid FROM pg_roles WHERE rolname = p_role);
    v_runner text;
BEGIN
    PERFORM df._revoke_usage_base(p_role);
    BEGIN
        SELECT runner INTO v_runner FROM df._runners WHERE role = v_role;
        IF v_runner IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION IF EXISTS %s(text)', v_runner);
            DELETE FROM df._runners WHERE role = v_role;
        END IF;
    EXCEPTION WHEN insufficient_privilege THEN
        -- A delegate may revoke usage but not drop the runner; without usage the worker refuses it.
        RAISE NOTICE 'pgflare: the step runner of "%" is kept (only the owner of schema df can drop it); it is not used without usage', p_role;
    END;
END
$$;

REVOKE ALL ON FUNCTION df.grant_usage(text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION df.revoke_usage(text) FROM PUBLIC;

-- Delegates that could call the old functions (with_grant) keep the new ones.
DO $$
DECLARE
    a record;
BEGIN
    FOR a IN SELECT p.proname, x.grantee::regrole AS grantee, x.is_grantable
               FROM pg_proc p, aclexplode(p.proacl) x
              WHERE p.oid IN ('df._grant_usage_base(text, boolean, boolean)'::regprocedure, 'df._revoke_usage_base(text)'::regprocedure)
                AND x.privilege_type = 'EXECUTE' AND x.grantee <> 0 AND x.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
                       CASE WHEN a.proname = '_grant_usage_base' THEN 'df.grant_usage(text, boolean, boolean)' ELSE 'df.revoke_usage(text)' END,
                       a.grantee, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        -- What the wrappers call as the delegate (df._usage_functions was never granted before).
        EXECUTE format('GRANT EXECUTE ON FUNCTION df._usage_functions(boolean, boolean), df._usage_functions_base(boolean, boolean), df._install_runner(regrole), df._grant_usage_before_0013(text, boolean, boolean), df._revoke_usage_before_0013(text) TO %s%s',
                       a.grantee, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
