-- 0017_role_limits: per-role concurrent step limit (issue 7 item 5).
--
--   df.role_limits                              role → max_concurrent_steps; no row = unlimited
--   df.set_role_limit(role, max_concurrent_steps)   sets it (NULL removes it); schema owner / superuser only
--   df.list_role_limits()                       each limit with the steps of that role in flight now
--   df._claim                                   claims a row of a role at its limit only when a slot is free
--
-- Reaching the limit is not an error: the role's ready steps wait (stay queued) until one of its steps
-- finishes, and the workers run other roles' steps meanwhile, so one tenant can't take every worker.
--
-- A step is in flight while (a) its row is claimed by a claim transaction that has not ended, or (b) it
-- holds a live lease (locked_until > now, run_at still set: not withdrawn). (a) is counted by slots:
-- transaction-level advisory locks, two-key form, key space
--     pg_try_advisory_xact_lock(<role oid as int4>, 1885798400 + slot)     slot in 0 .. limit - 1
-- (1885798400 = x'70676600', 'pgf\0'; pgflare's other advisory locks use the one-key bigint form, which
-- PostgreSQL keeps apart from the two-key form). A slot is released at COMMIT/ROLLBACK; a claim that
-- commits a lease gives its slot back in the same commit in which the lease becomes visible, and from
-- then on the lease counts as (b).
--
-- With no limit at all (df.role_limits empty) the claim is the one statement it was before.

CREATE TABLE df.role_limits (
    role                 regrole     PRIMARY KEY,
    max_concurrent_steps integer     NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_limits_max_check CHECK (max_concurrent_steps BETWEEN 1 AND 1000)
);
-- Only the schema owner (the worker) reads and writes it; users see limits through df.list_role_limits.
REVOKE ALL ON df.role_limits FROM PUBLIC;

-- Live leases per role: the claim counts these for a limited role.
CREATE INDEX nodes_leases_idx ON df.nodes (submitted_by, locked_until)
    WHERE locked_until IS NOT NULL AND run_at IS NOT NULL;

-- Steps of p_role in flight: live leases plus claim transactions holding a slot (pg_locks: costly, so
-- only for limited roles; the claim reads it before the leases, see df._take_slot).
CREATE FUNCTION df._role_in_flight(p_role regrole, p_now timestamptz, OUT leases integer, OUT claims integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT count(*)::integer INTO claims FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND l.classid = p_role::oid AND l.objid::bigint BETWEEN 1885798400 AND 1885798400 + 999;
    -- A separate statement, so its snapshot is newer than the lock table just read: a claim whose slot
    -- was gone from pg_locks has committed, and its lease (if it took one) is visible here.
    SELECT count(*)::integer INTO leases FROM df.nodes n
     WHERE n.submitted_by = p_role AND n.locked_until > p_now AND n.run_at IS NOT NULL;
END
$$;

-- Takes a free slot of p_role for this transaction (or the current subtransaction), if the role has
-- fewer than p_limit steps in flight. False = full; whatever it took is then released by the caller's
-- rollback to its savepoint (df._claim raises for that).
CREATE FUNCTION df._take_slot(p_role regrole, p_limit integer, p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key1 integer := (p_role::oid::bigint - CASE WHEN p_role::oid::bigint >= 2147483648 THEN 4294967296 ELSE 0 END)::integer;
    v_slot integer;
    v_got  boolean := false;
    v      record;
BEGIN
    FOR v_slot IN 0 .. p_limit - 1 LOOP
        IF pg_try_advisory_xact_lock(v_key1, 1885798400 + v_slot) THEN
            v_got := true;
            EXIT;
        END IF;
    END LOOP;
    IF NOT v_got THEN
        RETURN false;  -- p_limit claim transactions already run
    END IF;
    -- Slots bound the claim transactions; leases take the rest of the limit. The common case, no live
    -- lease of this role, needs no look at pg_locks.
    IF NOT EXISTS (SELECT 1 FROM df.nodes n
                    WHERE n.submitted_by = p_role AND n.locked_until > p_now AND n.run_at IS NOT NULL) THEN
        RETURN true;
    END IF;
    v := df._role_in_flight(p_role, p_now);
    -- claims includes our own slot. Two claims checking at once may both see each other and both give
    -- up (the role's row waits for the next claim): never more than the limit.
    RETURN v.claims + v.leases <= p_limit;
END
$$;

-- 0011's df._claim, same signature and columns, with the limit check. Without limits, the same single
-- statement as before. With limits, the candidate row is locked inside a block (a subtransaction): if its
-- role is full, raising rolls the block back, which releases the row and the slot lock, and the claim
-- looks again without that role's rows. A targeted claim (a queue message) of a full role returns
-- nothing; the row stays ready and the sweep dispatches it again.
CREATE OR REPLACE FUNCTION df._claim(p_now timestamptz, p_instance_id varchar DEFAULT NULL, p_node_id varchar DEFAULT NULL)
RETURNS TABLE (
    instance_id varchar, id varchar, node_type text, query text, result_name text, status text, stamp text,
    state jsonb, attempts integer, run_at timestamptz, options jsonb, instance_status text, root_node varchar,
    label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean,
    superuser_gate text, named jsonb, scope_status text, input text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v df.nodes%ROWTYPE;
    v_scope text;
    v_full oid[] := '{}';
    v_limit integer;
    v_found boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM df.role_limits) THEN
        IF p_instance_id IS NULL THEN
            SELECT * INTO v FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
        ELSE
            SELECT * INTO v FROM df.nodes n
             WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
               FOR UPDATE SKIP LOCKED;
        END IF;
        v_found := FOUND;
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
                SELECT l.max_concurrent_steps INTO v_limit FROM df.role_limits l WHERE l.role = v.submitted_by;
                IF FOUND AND NOT df._take_slot(v.submitted_by, v_limit, p_now) THEN
                    RAISE EXCEPTION 'role at its step limit' USING ERRCODE = 'PFL01';  -- internal: undo the row lock and the slot
                END IF;
                v_found := true;
                EXIT;
            EXCEPTION WHEN SQLSTATE 'PFL01' THEN
                v_full := v_full || v.submitted_by::oid;
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
      LEFT JOIN df.scopes s ON s.instance_id = v.instance_id AND s.scope_id = v_scope
     WHERE i.id = v.instance_id;
END
$$;

-- Sets or (max_concurrent_steps NULL) removes role's limit. Returns the limit now in force (NULL = none).
CREATE FUNCTION df.set_role_limit(role text, max_concurrent_steps integer) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role regrole;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
       AND NOT pg_has_role(current_user, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'df'), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: only the owner of schema df or a superuser may set role limits'
            USING ERRCODE = '42501';
    END IF;
    IF set_role_limit.role IS NULL THEN
        RAISE EXCEPTION 'df.set_role_limit(): role must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT r.oid::regrole INTO v_role FROM pg_roles r WHERE r.rolname = set_role_limit.role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', set_role_limit.role USING ERRCODE = '42704';
    END IF;
    IF set_role_limit.max_concurrent_steps IS NULL THEN
        DELETE FROM df.role_limits l WHERE l.role = v_role;
        RETURN NULL;
    END IF;
    IF set_role_limit.max_concurrent_steps NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_concurrent_steps must be between 1 and 1000 (or NULL for no limit), got %',
            set_role_limit.max_concurrent_steps USING ERRCODE = '22023';
    END IF;
    INSERT INTO df.role_limits AS l (role, max_concurrent_steps) VALUES (v_role, set_role_limit.max_concurrent_steps)
    ON CONFLICT ON CONSTRAINT role_limits_pkey DO UPDATE SET max_concurrent_steps = EXCLUDED.max_concurrent_steps, updated_at = now();
    RETURN set_role_limit.max_concurrent_steps;
END
$$;
REVOKE ALL ON FUNCTION df.set_role_limit(text, integer) FROM PUBLIC;

-- Every limit, with what the role has in flight now (claims: running claim transactions; leases: steps
-- running outside a transaction). Run as the caller: readable by whoever may read df.role_limits (the
-- schema owner); others get 42501 from the table.
CREATE FUNCTION df.list_role_limits()
RETURNS TABLE (role text, max_concurrent_steps integer, claims integer, leases integer, updated_at timestamptz)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.role::text, l.max_concurrent_steps, f.claims, f.leases, l.updated_at
      FROM df.role_limits l, LATERAL df._role_in_flight(l.role, now()) f
     ORDER BY 1
$$;
REVOKE ALL ON FUNCTION df.list_role_limits() FROM PUBLIC;

-- df.grant_usage grants EXECUTE on df's public functions; never on these two (0015's version plus them).
CREATE OR REPLACE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean) RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f FROM df._usage_functions_base(p_include_http, p_with_grant) f
      JOIN pg_proc p ON p.oid = f
     WHERE p.proname !~ '^_run_[0-9]+$'
       AND p.proname NOT IN ('_usage_functions_base', '_run_step', '_runner_problem', '_install_runner',
                             -- engine internals added later (0016, 0017): only the worker runs them
                             '_node_changes', '_role_in_flight', '_take_slot',
                             -- 0017: only the schema owner manages limits
                             'set_role_limit', 'list_role_limits')
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
