-- 0005_control: control functions of SPEC §5 / §4.4 / §2 (status, result, cancel, signal, vars,
-- await_instance, version, target_database, run, metrics).
--
-- Decision 6 (DESIGN.md): these functions never advance the graph. df.cancel flips the instance
-- (and withdraws its queued work); df.signal records the signal and makes a waiting SIGNAL leaf
-- claimable. The engine does the rest.
--
-- All functions are SECURITY INVOKER, so row-level security decides what a caller can see: another
-- role's instance is indistinguishable from an unknown id.
--
-- SQLSTATEs raised here (stable; clients may match on them):
--   22023 invalid_parameter_value      empty instance id / signal name, non-positive timeout
--   P0002 no_data_found                instance not found (or not visible to the caller)
--   55000 object_not_in_prerequisite_state   "... cannot be called inside a workflow"
--   57014 query_canceled               df.await_instance gave up after timeout_seconds (the same
--                                      SQLSTATE PostgreSQL uses for statement_timeout)

-- ---------------------------------------------------------------------------------------------
-- Internal: parse text as JSON without raising (NULL when it is not valid JSON). PG 14/15 have no
-- pg_input_is_valid, so the cast is attempted inside its own exception block.
CREATE FUNCTION df._jsonb_or_null(p_text text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN p_text::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- status / result

-- VOLATILE like pg_durable's: a statement that changes the instance (df.cancel) and reads it back in
-- the same SELECT sees its own change.
CREATE FUNCTION df.status(instance_id text) RETURNS text
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.status FROM df.instances AS i WHERE i.id = $1
$$;

-- The root node's result, only once that node completed (a failed instance has no result).
CREATE FUNCTION df.result(instance_id text) RETURNS text
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.result::text
    FROM df.instances AS i
    JOIN df.nodes AS n ON n.instance_id = i.id AND n.id = i.root_node
    WHERE i.id = $1 AND n.status = 'completed'
$$;

-- ---------------------------------------------------------------------------------------------
-- cancel

CREATE FUNCTION df.cancel(instance_id text, reason text DEFAULT 'Cancelled by user') RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status text;
BEGIN
    -- Lock the row so a concurrent checkpoint (which also locks it, DESIGN 7) sees either the old
    -- or the new status, never a half-applied cancel.
    SELECT i.status INTO v_status FROM df.instances AS i WHERE i.id = cancel.instance_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', cancel.instance_id
            USING ERRCODE = 'P0002';
    END IF;

    -- A terminal instance stays as it is (test 22): the call still reports success.
    IF v_status NOT IN ('completed', 'failed', 'cancelled') THEN
        UPDATE df.instances AS i SET status = 'cancelled', updated_at = now()
        WHERE i.id = cancel.instance_id;
        v_status := 'cancelled';
    END IF;

    -- Withdraw queued work so no worker claims another step of a cancelled instance; steps already
    -- running finish or are abandoned at their checkpoint (§3.12: they keep their physical status).
    IF v_status = 'cancelled' THEN
        -- SKIP LOCKED: this transaction holds the instance row, so it must never wait for a node row
        -- (DESIGN 7); a step that holds one learns of the cancel at its checkpoint and withdraws itself.
        UPDATE df.nodes AS n SET run_at = NULL
        WHERE (n.instance_id, n.id) IN (
            SELECT q.instance_id, q.id FROM df.nodes AS q
             WHERE q.instance_id = cancel.instance_id AND q.run_at IS NOT NULL
               FOR UPDATE SKIP LOCKED);
    END IF;

    RETURN format('Instance %s cancelled: %s', cancel.instance_id, cancel.reason);
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- signal

CREATE FUNCTION df.signal(instance_id text, signal_name text, signal_data text DEFAULT '{}') RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner  regrole;
    v_status text;
    v_woken  integer;
BEGIN
    IF signal.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF signal.signal_name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = '22023';
    END IF;

    SELECT i.submitted_by, i.status INTO v_owner, v_status
    FROM df.instances AS i WHERE i.id = signal.instance_id;
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

-- ---------------------------------------------------------------------------------------------
-- variables (§4.4). Each role has its own namespace (df.vars.owner defaults to current_user, and RLS
-- hides other roles' rows). The helper marker (§1.4) lets the DSL reject `df.seq(df.setvar(..), ..)`.

CREATE FUNCTION df.setvar(name text, value text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.setvar() cannot be called inside a workflow - set variables before starting the workflow'
            USING ERRCODE = '55000';
    END IF;
    -- Conflict target by constraint name: a column list `(owner, name)` would clash with the
    -- parameter `name` inside plpgsql.
    INSERT INTO df.vars AS v (name, value) VALUES (setvar.name, setvar.value)
    ON CONFLICT ON CONSTRAINT vars_pkey DO UPDATE SET value = EXCLUDED.value;
    PERFORM df._mark_helper('df.setvar');
    RETURN 'OK';
END;
$$;

-- VOLATILE: `SELECT df.setvar('a', '1'), df.getvar('a')` reads the value just written.
CREATE FUNCTION df.getvar(name text) RETURNS text
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.value FROM df.vars AS v
    WHERE v.name = $1 AND v.owner = quote_ident(current_user)::regrole
$$;

CREATE FUNCTION df.unsetvar(name text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.unsetvar() cannot be called inside a workflow - manage variables before starting the workflow'
            USING ERRCODE = '55000';
    END IF;
    DELETE FROM df.vars AS v
    WHERE v.name = unsetvar.name AND v.owner = quote_ident(current_user)::regrole;
    PERFORM df._mark_helper('df.unsetvar');
    RETURN 'OK';
END;
$$;

CREATE FUNCTION df.clearvars() RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.clearvars() cannot be called inside a workflow - manage variables before starting the workflow'
            USING ERRCODE = '55000';
    END IF;
    DELETE FROM df.vars AS v WHERE v.owner = quote_ident(current_user)::regrole;
    PERFORM df._mark_helper('df.clearvars');
    RETURN 'OK';
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- await_instance / wait_for_completion

-- Polls df.instances.status every 100 ms. Each poll is its own statement, so under READ COMMITTED it
-- sees commits made by the worker (or any other session) since the previous poll.
CREATE FUNCTION df.await_instance(instance_id text, timeout_seconds integer DEFAULT 30) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status   text;
    v_attempts integer := 0;
    v_max      integer;
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.await_instance() cannot be called inside a workflow - it would block a worker thread (and self-deadlock if waiting on the current instance). Use df.signal() and df.wait_for_signal() for cross-workflow coordination.'
            USING ERRCODE = '55000';
    END IF;
    IF await_instance.timeout_seconds <= 0 THEN
        RAISE EXCEPTION 'Timeout must be positive' USING ERRCODE = '22023';
    END IF;
    v_max := least(await_instance.timeout_seconds::bigint * 10, 2147483647)::integer;

    LOOP
        SELECT lower(i.status) INTO v_status FROM df.instances AS i WHERE i.id = await_instance.instance_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Instance not found: %', await_instance.instance_id USING ERRCODE = 'P0002';
        END IF;
        IF v_status IN ('completed', 'failed', 'cancelled') THEN
            PERFORM df._mark_helper('df.await_instance');
            RETURN v_status;
        END IF;
        v_attempts := v_attempts + 1;
        IF v_attempts >= v_max THEN
            RAISE EXCEPTION 'Timeout after %s waiting for instance % (status: %). Check if background worker is running.',
                await_instance.timeout_seconds, await_instance.instance_id, coalesce(v_status, 'unknown')
                USING ERRCODE = '57014';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END;
$$;

CREATE FUNCTION df.wait_for_completion(instance_id text, timeout_seconds integer DEFAULT 30) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE WARNING 'df.wait_for_completion() is deprecated; use df.await_instance() instead';
    RETURN df.await_instance(wait_for_completion.instance_id, wait_for_completion.timeout_seconds);
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- version / target_database / run

-- pg_durable's version first, so clients that parse it keep working; ours follows in parentheses.
CREATE FUNCTION df.version() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '0.2.6 (pgflare 0.1.0)'::text
$$;

-- The control database is the one holding schema df: the current one.
CREATE FUNCTION df.target_database() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT current_database()::text
$$;

-- No-op kept for compatibility: workers pick up ready work on their own.
CREATE FUNCTION df.run(instance_id text DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN $1 IS NULL THEN 'Triggered run for all pending instances'
                ELSE 'Triggered run for instance: ' || $1 END
$$;

-- ---------------------------------------------------------------------------------------------
-- metrics: system-wide counts. Not granted to PUBLIC (§6.2). Under RLS a granted role still counts
-- only the rows it can see; the table owner and superusers see everything.
--   running_instances   = pending + running (both are "in flight"; pg_durable's engine reports a
--                         started-but-not-yet-picked-up instance as running)
--   failed_instances    = failed + cancelled (pg_durable's engine records a cancel as a failure)
--   total_executions    = sum of root generations (one execution per loop iteration)
--   total_events        = nodes that the engine has stamped (status_details set)
CREATE FUNCTION df.metrics()
RETURNS TABLE (total_instances bigint, running_instances bigint, completed_instances bigint,
               failed_instances bigint, total_executions bigint, total_events bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*),
           count(*) FILTER (WHERE i.status IN ('pending', 'running')),
           count(*) FILTER (WHERE i.status = 'completed'),
           count(*) FILTER (WHERE i.status IN ('failed', 'cancelled')),
           coalesce(sum(i.generation), 0)::bigint,
           (SELECT count(*) FROM df.nodes AS n WHERE n.status_details IS NOT NULL)
    FROM df.instances AS i
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants: the public API, one function at a time (0001 revoked the PUBLIC default). USAGE on schema df
-- is still the gate. df.metrics and the internal df._jsonb_or_null stay ungranted.
REVOKE EXECUTE ON FUNCTION df.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION df.status(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.result(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.cancel(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.signal(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.setvar(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.getvar(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.unsetvar(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.clearvars() TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.await_instance(text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.wait_for_completion(text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.version() TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.target_database() TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.run(text) TO PUBLIC;
