-- 0024_grants_comments: df.grant_usage and df.revoke_usage as one function each, by a rule instead of
-- an exclusion list; delegated grants get step runners; COMMENT ON FUNCTION for the engine's functions.
--
-- Until now df.grant_usage was a chain of wrappers (0009 → 0013 → 0015, renamed to _grant_usage_base and
-- _grant_usage_before_0013), and what it granted EXECUTE on was "every df function except" a list that
-- each migration adding an engine internal had to extend (0015, 0017, 0023). Forgetting one granted it to
-- every user. Now the rule is structural (df._usage_functions): a role gets the public API, the sensitive
-- functions its options ask for, and the `_` helpers those functions call as the invoker. Engine
-- internals are called by no API function, so they are never granted, and a new one needs no list.
--
-- Delegated grants (issue 16): a role granted `with_grant` could grant usage but could not make the
-- grantee's step runner (only the owner of schema df can create functions in df), so the grantee's first
-- step blocked with "has no step runner". Runners are now made by df._make_runner, a SECURITY DEFINER
-- function owned by the schema owner and executable only by the owner and delegates; it makes a runner
-- only for a role that already holds usage on df, and a runner runs only that role's own instances, as
-- that role, called only by the worker. A delegate passes on only privileges it holds with grant option:
-- http without it is refused (42501) instead of half-granted.

DROP FUNCTION df._grant_usage_base(text, boolean, boolean);
DROP FUNCTION df._grant_usage_before_0013(text, boolean, boolean);
DROP FUNCTION df._revoke_usage_base(text);
DROP FUNCTION df._revoke_usage_before_0013(text);
DROP FUNCTION df._usage_functions_base(boolean, boolean);

-- What df.grant_usage grants EXECUTE on. Seeds: every non-`_` function PUBLIC may execute (the API), plus
-- http/http_multipart with p_include_http and metrics/grant_usage/revoke_usage with p_with_grant. Then,
-- transitively, every `_` function a granted SECURITY INVOKER function's body calls as `df._name`: those
-- run with the caller's rights. A SECURITY DEFINER body runs as its owner, so what it calls is not
-- followed. Plus the three helpers the REST API calls as the request's role (src/api): _eval_dsl,
-- _api_token_role and _hook_for_delivery. Set_role_limit/list_role_limits (owner only) are revoked from
-- PUBLIC and are no seed; step runners (_run_<oid>) are called by no function body.
CREATE OR REPLACE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean) RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE fns AS (
        SELECT p.oid, p.proname::text AS name FROM pg_proc p WHERE p.pronamespace = 'df'::regnamespace
    ), calls AS (
        -- Who calls whom: every df._name a SECURITY INVOKER body mentions, read once per function.
        SELECT DISTINCT p.oid AS caller, m[1] AS callee
          FROM pg_proc p, regexp_matches(p.prosrc, 'df\.(_[a-z0-9_]+)', 'g') AS m
         WHERE p.pronamespace = 'df'::regnamespace AND NOT p.prosecdef
    ), granted(oid) AS (
        SELECT f.oid FROM fns f
         WHERE (f.name !~ '^_' AND has_function_privilege('public', f.oid, 'EXECUTE'))
            OR (p_include_http AND f.name IN ('http', 'http_multipart'))
            OR (p_with_grant AND f.name IN ('metrics', 'grant_usage', 'revoke_usage'))
            OR f.name IN ('_eval_dsl', '_api_token_role', '_hook_for_delivery')
        UNION
        SELECT f.oid FROM granted g JOIN calls c ON c.caller = g.oid JOIN fns f ON f.name = c.callee
    )
    SELECT oid::regprocedure FROM granted
$$;

-- Makes (or re-makes) p_role's step runner as the owner of schema df, for a role that holds usage on df.
-- Executable by the owner and by delegates (df.grant_usage with_grant), so a delegated grant leaves the
-- grantee able to run workflows. It gives nobody rights: the runner runs only p_role's own instances, as
-- p_role, and only the worker may call it. Returns why no runner was made (superuser, CREATE on df), or NULL.
CREATE FUNCTION df._make_runner(p_role regrole) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = p_role::oid) THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    IF NOT has_schema_privilege(p_role, 'df', 'USAGE') THEN
        RAISE EXCEPTION 'pgflare: role "%" has no usage on schema df: a step runner is made only for a role granted usage (df.grant_usage)', p_role
            USING ERRCODE = '42501';
    END IF;
    RETURN df._install_runner(p_role);
END
$$;

-- Drops the runners of roles that no longer hold usage on df (revoked, also by CASCADE from a delegate's
-- revocation) or no longer exist. Run by df.revoke_usage, as the owner of schema df; idempotent.
CREATE FUNCTION df._drop_stale_runners() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    v_dropped integer := 0;
BEGIN
    FOR x IN SELECT r.role, r.runner FROM df._runners r
              WHERE CASE WHEN EXISTS (SELECT 1 FROM pg_roles o WHERE o.oid = r.role)
                         THEN NOT has_schema_privilege(r.role, 'df', 'USAGE') ELSE true END
                FOR UPDATE
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s(text)', x.runner);
        DELETE FROM df._runners WHERE role = x.role;
        v_dropped := v_dropped + 1;
    END LOOP;
    RETURN v_dropped;
END
$$;

CREATE OR REPLACE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
    v_fn regprocedure;
    v_refused text;
    v_why text;
BEGIN
    IF to_regrole(quote_ident(p_role)) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    -- The caller passes on what it holds with grant option (the owner holds everything). What PUBLIC may
    -- execute anyway needs no passing on; anything else is refused before anything is granted.
    SELECT string_agg(f::text, ', ' ORDER BY f::text) INTO v_refused FROM df._usage_functions(include_http, with_grant) f
     WHERE NOT has_function_privilege(current_user, f, 'EXECUTE WITH GRANT OPTION') AND NOT has_function_privilege('public', f, 'EXECUTE');
    IF v_refused IS NOT NULL THEN
        RAISE EXCEPTION 'pgflare: "%" may not grant EXECUTE on %: it does not hold it with grant option (ask the owner of schema df%)',
            current_user, v_refused, CASE WHEN include_http OR with_grant THEN ', or grant without include_http/with_grant' ELSE '' END
            USING ERRCODE = '42501';
    END IF;
    FOR v_fn IN SELECT * FROM df._usage_functions(include_http, with_grant) f
                 WHERE has_function_privilege(current_user, f, 'EXECUTE WITH GRANT OPTION') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I%s', v_fn, p_role, v_opt);
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA df TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, UPDATE (status, updated_at, input), INSERT (id, label, root_node, submitted_by, database, vars, input) ON df.instances TO %I%s', p_role, v_opt);
    -- UPDATE (run_at): df.cancel withdraws queued work, df.signal wakes a waiting node. The engine runs
    -- only leaves it activated itself (status running, a live scope), so a hand-set run_at does nothing.
    EXECUTE format('GRANT SELECT, INSERT (id, instance_id, node_type, query, result_name, left_node, right_node, submitted_by, database, run_at, options), UPDATE (run_at) ON df.nodes TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (instance_id, signal_name, payload, submitted_by) ON df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.scopes, df.events TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (name, version, graph, description), DELETE ON df.workflows TO %I%s', p_role, v_opt);
    -- Schedules: a role writes only what the schedule functions write; fires and last_* are the worker's.
    EXECUTE format('GRANT SELECT, DELETE, INSERT (name, workflow, cron, timezone, input, missed, overlap, next_fire_at), UPDATE (workflow, cron, timezone, input, missed, overlap, paused, next_fire_at, last_error, last_error_at, updated_at) ON df.schedules TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.schedule_fires TO %I%s', p_role, v_opt);
    -- Webhooks: `secret` is INSERT/UPDATE only, nobody but the table owner reads it back.
    EXECUTE format('GRANT SELECT (id, name, owner, workflow, scheme, tolerance_seconds, max_body_bytes, created_at, secret_rotated_at), '
                   'INSERT (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes), UPDATE (secret, secret_rotated_at), DELETE '
                   'ON df._hooks TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (hook_id, delivery_id, instance_id), DELETE ON df.hook_deliveries TO %I%s', p_role, v_opt);
    RAISE NOTICE 'pg_durable: granted df usage privileges to "%"', p_role;
    -- The step runner, made as the owner of schema df (the caller may be a delegate).
    v_why := df._make_runner(quote_ident(p_role)::regrole);
    IF v_why IS NOT NULL THEN
        RAISE WARNING 'pgflare: no step runner for "%": %; its SQL steps will not run until the owner of schema df runs df.grant_usage(%)',
            p_role, v_why, quote_literal(p_role);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role oid := to_regrole(quote_ident(p_role))::oid;
    v_me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
    v_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    v_fn regprocedure;
BEGIN
    IF v_role IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    -- Exactly the EXECUTE grants the caller made (a superuser acts as the functions' owner), whatever
    -- version of df.grant_usage made them.
    FOR v_fn IN SELECT DISTINCT p.oid::regprocedure
                  FROM pg_proc p, aclexplode(p.proacl) a
                 WHERE p.pronamespace = 'df'::regnamespace AND a.privilege_type = 'EXECUTE'
                   AND a.grantee = v_role AND a.grantee <> p.proowner
                   AND (a.grantor = v_me OR (v_super AND a.grantor = p.proowner))
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I CASCADE', v_fn, p_role);
    END LOOP;
    -- Exactly what grant_usage granted on df._hooks: REVOKE ALL would also name columns never granted
    -- (the system columns, whose SELECT is column-level), which a delegate may not revoke.
    EXECUTE format('REVOKE SELECT (id, name, owner, workflow, scheme, tolerance_seconds, max_body_bytes, created_at, secret_rotated_at), '
                   'INSERT (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes), UPDATE (secret, secret_rotated_at), DELETE '
                   'ON df._hooks FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE SELECT, INSERT (hook_id, delivery_id, instance_id), DELETE ON df.hook_deliveries FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE ALL ON df.instances, df.nodes, df.vars, df.signals, df.scopes, df.events, df.workflows, df.schedules, df.schedule_fires FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA df FROM %I CASCADE', p_role);
    RAISE NOTICE 'pg_durable: revoked df usage privileges granted by "%" from "%"', current_user, p_role;
    -- The role's runner goes once it has no usage left (another grantor's grant keeps it), and so do the
    -- runners of roles the CASCADE took usage from.
    PERFORM df._drop_stale_runners();
END
$$;

REVOKE ALL ON FUNCTION df.grant_usage(text, boolean, boolean), df.revoke_usage(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION df._make_runner(regrole), df._drop_stale_runners() FROM PUBLIC;

-- Delegates granted before this migration hold EXECUTE on the old wrappers' helpers, not on the new ones
-- df.grant_usage/df.revoke_usage call as them: grant those, with grant option, so they keep delegating.
DO $$
DECLARE
    a record;
BEGIN
    FOR a IN SELECT DISTINCT x.grantee::regrole AS grantee
               FROM pg_proc p, aclexplode(p.proacl) x
              WHERE p.oid = 'df.grant_usage(text, boolean, boolean)'::regprocedure
                AND x.privilege_type = 'EXECUTE' AND x.is_grantable AND x.grantee <> 0 AND x.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s WITH GRANT OPTION',
                       (SELECT string_agg(f::text, ', ') FROM df._usage_functions(false, true) f
                         WHERE (SELECT proname FROM pg_proc WHERE oid = f) ~ '^_'),
                       a.grantee);
    END LOOP;
END
$$;

-- What each engine function does; the current definitions are in test/schema.sql (migrations/README.md).
-- Lock order everywhere: a node row of df.nodes, then its instance row of df.instances (FOR NO KEY UPDATE).
COMMENT ON FUNCTION df._claim(timestamptz, varchar, varchar) IS
    'Engine (worker only). Claims the oldest ready df.nodes row (or the given one) FOR UPDATE SKIP LOCKED and returns it with what running it needs from its instance, owner role and scope, in one statement. Locks only the node row; with role limits it takes a slot (df._take_slot) and skips full roles. Its RETURNS TABLE is the claim''s column list: df._claim_many, the prepared wake-up claim and ClaimedRow (src/engine/queries/claim.ts) are tested against it.';
COMMENT ON FUNCTION df._claim_many(timestamptz, integer) IS
    'Engine (worker only). Claims up to p_limit ready df.nodes rows for a batch, oldest first, with df._claim''s columns; with role limits in place or p_limit <= 1 it is df._claim. Locks only the node rows.';
COMMENT ON FUNCTION df._lock_and_load(varchar, varchar[], text[]) IS
    'Engine (worker only). Locks the instance row (FOR NO KEY UPDATE, after the caller''s node row: node, then instance) and returns {instance, nodes, scopes} for the ids asked for, so a checkpoint reads everything it needs in one round trip.';
COMMENT ON FUNCTION df._apply(varchar, jsonb, jsonb) IS
    'Engine (worker only). Writes one checkpoint (the state machine''s changes to nodes, scopes, instance and events) of one instance. With p_expect it first locks the instance row (after the node row the worker claimed) and checks the worker''s cached copy is still current (PFS01 if not, nothing written); other node rows it writes are locked NOWAIT (55P03: the engine retries), never waited for.';
COMMENT ON FUNCTION df._apply_many(jsonb) IS
    'Engine (worker only). Writes the checkpoints of a batch of one-step instances in a few set-based statements: the instance rows first (after the claimed node rows), every item''s stale-copy check (PFS01 fails the batch), other node rows NOWAIT (55P03), then the writes; lock order as df._apply.';
COMMENT ON FUNCTION df._take_slot(regrole, integer, timestamptz) IS
    'Engine (worker only). Takes a free step slot of a role with a limit (df.set_role_limit) as a transaction advisory lock; false when the role has p_limit steps in flight. Called by df._claim while it holds the node row.';
COMMENT ON FUNCTION df._role_in_flight(regrole, timestamptz) IS
    'Engine (worker only). Steps of a role in flight: live leases in df.nodes plus claim transactions holding one of its slots (pg_locks).';
COMMENT ON FUNCTION df._run_step(regrole, text) IS
    'Engine (worker only). Runs a SQL step as its owner through the owner''s step runner df._run_<oid>; PF010 with df._runner_problem''s reason when the owner cannot run steps.';
COMMENT ON FUNCTION df._runner_problem(regrole) IS
    'Engine (worker only). Why a role''s steps cannot run (gone, no LOGIN, superuser, no usage, CREATE on df, no runner), or NULL.';
COMMENT ON FUNCTION df._install_runner(regrole) IS
    'Creates a role''s SECURITY DEFINER step runner df._run_<oid>, owned by the role and executable only by the worker; must run as the owner of schema df (df._make_runner). Returns why it made none, or NULL.';
COMMENT ON FUNCTION df._make_runner(regrole) IS
    'SECURITY DEFINER (owner of schema df). Makes the step runner of a role that holds usage on df; lets a delegate''s df.grant_usage leave the grantee able to run workflows. Executable by the owner and delegates only.';
COMMENT ON FUNCTION df._drop_stale_runners() IS
    'SECURITY DEFINER (owner of schema df). Drops the step runners of roles without usage on df (or gone); run by df.revoke_usage.';
COMMENT ON FUNCTION df._usage_functions(boolean, boolean) IS
    'The functions df.grant_usage grants EXECUTE on: the public API, http functions with include_http, metrics/grant_usage/revoke_usage with with_grant, and the _ helpers those call as the invoker (transitively), plus the REST API''s three. Engine internals are never among them.';
COMMENT ON FUNCTION df._schedule_plan(text, text, timestamptz, timestamptz, interval) IS
    'Engine (worker only). For a schedule due now: the fire time to start (on time or caught up per missed policy) and the next fire time.';
COMMENT ON FUNCTION df._limit_nodes() IS 'Trigger on df.nodes: refuses a step larger than pgflare.max_step_bytes or a graph larger than pgflare.max_graph_bytes (54000).';
COMMENT ON FUNCTION df._limit_var() IS 'Trigger on df.vars: refuses a value larger than pgflare.max_var_bytes (54000).';
COMMENT ON FUNCTION df._limit_signal() IS 'Trigger on df.signals: refuses a payload larger than pgflare.max_signal_bytes (54000).';
COMMENT ON FUNCTION df.grant_usage(text, boolean, boolean) IS
    'Grants a role what it needs to use pgflare (schema usage, the API''s functions, column-level table rights) and makes its step runner. include_http adds df.http/df.http_multipart; with_grant lets the role grant the same to others (a delegate), passing on only what it holds with grant option.';
COMMENT ON FUNCTION df.revoke_usage(text) IS
    'Revokes what the caller granted the role with df.grant_usage (CASCADE: also what the role granted on), and drops the step runners of roles left without usage.';
COMMENT ON FUNCTION df.set_role_limit(text, integer) IS
    'Owner of schema df or a superuser only. Sets the most steps of a role running at once (NULL removes the limit); the claim skips a role at its limit.';
COMMENT ON FUNCTION df.list_role_limits() IS 'Owner only. The per-role step limits set with df.set_role_limit, with the steps of each role in flight.';
COMMENT ON FUNCTION df.metrics() IS 'Counts of instances by status, executions and events, of the rows the caller may see; revoked from PUBLIC, granted with with_grant.';

-- The public API (pg_durable's SQL surface; docs/SQL.md has the details).
COMMENT ON FUNCTION df.start(text, text, text, text) IS 'Validates a workflow graph and starts it as an instance owned by current_user, in the caller''s transaction; returns the instance id. Steps run later, on the worker, as that owner.';
COMMENT ON FUNCTION df.sql(text) IS 'DSL: a SQL step (a leaf). Plain text where a step is expected means the same.';
COMMENT ON FUNCTION df.seq(text, text) IS 'DSL (operator ~>): runs a, then b.';
COMMENT ON FUNCTION df."as"(text, text) IS 'DSL: names a step''s result, for $name.column substitution in later steps.';
COMMENT ON FUNCTION df.as_op(text, text) IS 'DSL operator |=>: df.as.';
COMMENT ON FUNCTION df."join"(text, text) IS 'DSL (operator &): runs a and b in parallel and waits for both.';
COMMENT ON FUNCTION df.join3(text, text, text) IS 'DSL: runs three branches in parallel and waits for all.';
COMMENT ON FUNCTION df.race(text, text) IS 'DSL (operator |): runs a and b in parallel; the first to finish decides, the other''s scope is cancelled.';
COMMENT ON FUNCTION df."if"(text, text, text) IS 'DSL: runs the condition step, then then_branch or else_branch by its result.';
COMMENT ON FUNCTION df.if_then_op(text, text) IS 'DSL operator ?>: the condition and then-branch of an IF, completed by !>.';
COMMENT ON FUNCTION df.if_else_op(text, text) IS 'DSL operator !>: adds the else-branch to a ?> IF.';
COMMENT ON FUNCTION df.if_rows(text, text, text) IS 'DSL: then_branch if the named result has rows, else else_branch.';
COMMENT ON FUNCTION df.loop(text, text) IS 'DSL: repeats body while the condition step holds (forever without one, until df.break).';
COMMENT ON FUNCTION df.loop_prefix_op(text) IS 'DSL prefix operator @>: df.loop(body).';
COMMENT ON FUNCTION df.break(text) IS 'DSL: leaves the innermost loop, with an optional value.';
COMMENT ON FUNCTION df.sleep(bigint) IS 'DSL: a durable timer; the instance waits this many seconds without holding a connection.';
COMMENT ON FUNCTION df.wait_for_signal(text, integer) IS 'DSL: waits for a signal of this name sent with df.signal (optionally at most timeout_seconds); its data is the step''s result.';
COMMENT ON FUNCTION df.wait_for_schedule(text) IS 'DSL: waits until the next time the cron expression matches.';
COMMENT ON FUNCTION df.retry(text, integer, numeric, numeric) IS 'DSL: retries a failing step up to max_attempts times with exponential backoff.';
COMMENT ON FUNCTION df.timeout(text, numeric) IS 'DSL: fails a step that runs longer than this many seconds.';
COMMENT ON FUNCTION df.http(text, text, text, jsonb, integer) IS 'DSL: an HTTP request step, run by the worker under the egress policy; revoked from PUBLIC, granted with include_http.';
COMMENT ON FUNCTION df.http_multipart(text, text, jsonb, jsonb, integer) IS 'DSL: a multipart/form-data HTTP request step; revoked from PUBLIC, granted with include_http.';
COMMENT ON FUNCTION df.explain(text) IS 'Renders a workflow graph (DSL text, an envelope, or an instance id with per-node status) as a tree.';
COMMENT ON FUNCTION df.signal(text, text, text) IS 'Sends a named signal, with optional data, to an instance of the caller''s; a waiting df.wait_for_signal step receives it.';
COMMENT ON FUNCTION df.cancel(text, text) IS 'Cancels an instance of the caller''s: withdraws its queued work and marks it cancelled.';
COMMENT ON FUNCTION df.status(text) IS 'An instance''s status (pending, running, completed, failed, cancelled), or NULL when the caller cannot see it.';
COMMENT ON FUNCTION df.result(text) IS 'The result of an instance''s root node once it completed (NULL before).';
COMMENT ON FUNCTION df.await_instance(text, integer) IS 'Waits up to timeout_seconds for an instance of the caller''s to finish; returns its status.';
COMMENT ON FUNCTION df.wait_for_completion(text, integer) IS 'Deprecated alias of df.await_instance (raises a warning).';
COMMENT ON FUNCTION df.run(text) IS 'pg_durable compatibility: a no-op that reports a triggered run; the worker picks up ready work by itself.';
COMMENT ON FUNCTION df.list_instances(text, integer) IS 'The caller''s instances, newest first, optionally by status.';
COMMENT ON FUNCTION df.list_instances(text, integer, text, text) IS 'The caller''s instances, newest first, by status and label, paged with a cursor.';
COMMENT ON FUNCTION df.instance_info(text) IS 'One instance''s summary: id, label, status, generation, output.';
COMMENT ON FUNCTION df.instance_nodes(text) IS 'The nodes of one instance, with their status and results.';
COMMENT ON FUNCTION df.instance_nodes(text, integer) IS 'The nodes of one instance, limited to the last N executions.';
COMMENT ON FUNCTION df.instance_executions(text, integer) IS 'The executions (runs of steps) of one instance, newest first.';
COMMENT ON FUNCTION df.instance_events(text) IS 'The event history of one instance (activations, completions, failures, retries).';
COMMENT ON FUNCTION df.setvar(text, text) IS 'Sets a variable of the caller''s, read by steps as {name}.';
COMMENT ON FUNCTION df.getvar(text) IS 'A variable of the caller''s, or NULL.';
COMMENT ON FUNCTION df.unsetvar(text) IS 'Removes a variable of the caller''s.';
COMMENT ON FUNCTION df.clearvars() IS 'Removes every variable of the caller''s.';
COMMENT ON FUNCTION df.define_workflow(text, text, text) IS 'Validates a graph and stores it as the next version of a named workflow of the caller''s; returns the version.';
COMMENT ON FUNCTION df.start_workflow(text, jsonb, text, integer) IS 'Starts the latest (or the given) version of a named workflow, with an input steps read as the named result input.';
COMMENT ON FUNCTION df.drop_workflow(text) IS 'Removes every version of a named workflow; running instances are unaffected.';
COMMENT ON FUNCTION df.create_schedule(text, text, text, text, jsonb, text, text) IS 'Starts a named workflow on a cron schedule in a time zone, with missed and overlap policies.';
COMMENT ON FUNCTION df.alter_schedule(text, text, text, jsonb, text, text, text) IS 'Changes a schedule of the caller''s (NULL arguments keep their value); returns its next fire time.';
COMMENT ON FUNCTION df.pause_schedule(text) IS 'Pauses a schedule: it does not fire until resumed.';
COMMENT ON FUNCTION df.resume_schedule(text) IS 'Resumes a paused schedule from the next fire time after now; returns it.';
COMMENT ON FUNCTION df.drop_schedule(text) IS 'Removes a schedule of the caller''s.';
COMMENT ON FUNCTION df.list_schedules() IS 'The caller''s schedules with their next and last fires.';
COMMENT ON FUNCTION df.schedule_history(text, integer) IS 'The fires of a schedule, newest first, with the instance each started.';
COMMENT ON FUNCTION df.cron_next_fire(text, text, timestamptz) IS 'The next time a cron expression fires in a time zone after a given instant.';
COMMENT ON FUNCTION df.create_hook(text, text, text, text, integer, integer) IS 'Creates a webhook that starts a named workflow on each verified delivery (HMAC signature); returns its secret.';
COMMENT ON FUNCTION df.rotate_hook_secret(text, text) IS 'Replaces a webhook''s secret; returns the new one.';
COMMENT ON FUNCTION df.drop_hook(text) IS 'Removes a webhook of the caller''s.';
COMMENT ON FUNCTION df.list_hooks() IS 'The caller''s webhooks (never their secrets).';
COMMENT ON FUNCTION df.create_api_token(text, text) IS 'Makes a REST API bearer token for a role and returns it (shown only once; only its hash is stored).';
COMMENT ON FUNCTION df.revoke_api_token(text, text) IS 'Revokes a REST API token of a role.';
COMMENT ON FUNCTION df.target_database() IS 'The database steps run in (the current one).';
COMMENT ON FUNCTION df.version() IS 'The pg_durable version this surface implements, and pgflare''s.';
