-- 0018_generic_plans: the engine's hot functions use generic plans (issue 4; docs/ARCHITECTURE.md "Measured").
--
-- PL/pgSQL caches each statement's plan, but a statement with parameters is planned again on every call
-- (a "custom" plan) for as long as the plan cache judges custom plans cheaper than the generic one, and
-- for these statements it always does. That re-planning was about a third of the server's CPU per step
-- (bench/profile.ts: 2.85 -> 1.93 ms per one-step instance; planning shows up in the functions' own
-- time, not in their statements'). Every statement in them is a primary-key probe, a TID scan or the
-- ready-index scan, so the generic plan is the plan we want anyway.
--
-- df._apply's UPDATE joined the changes to df.nodes on `id` with a ctid filter: as a custom plan that
-- became a TID scan, as a generic one a scan of the whole primary-key index on its second column. Now
-- the ctids are paired with their changes and the UPDATE is a parameterized TID scan per change.
ALTER FUNCTION df._lock_and_load(varchar, varchar[], text[]) SET plan_cache_mode = force_generic_plan;

DROP FUNCTION df._node_changes(jsonb);

-- Same contract as 0008's df._apply (p_changes documented there).
CREATE OR REPLACE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_owner regrole;
    v_tids tid[];
    v_lock tid[];
    v_cs jsonb[];
    v_written integer;
BEGIN
    -- Each changed row's ctid, by one primary-key probe per change (a correlated subquery: no join for
    -- the planner to get wrong); then the rows are locked and written by ctid (TID scans).
    -- Each changed row's ctid and change, by one primary-key probe per change (LATERAL: a nested loop
    -- over both key columns is the only plan, generic or not); then locked and written by ctid.
    -- Each changed row's ctid by a correlated primary-key probe per change: as a subquery its only plan
    -- is the probe on both key columns (a join was planned as a scan of the instance's rows when the
    -- generic plan guesses 100 changes). The changes are unpacked inline: df._node_changes, a SQL
    -- function, was planned afresh on every call (SQL functions keep no plans across calls), ~0.1 ms.
    SELECT array_agg(t.tid), array_agg(t.c), array_agg(t.tid) FILTER (WHERE coalesce((t.c ->> 'nowait')::boolean, true))
      INTO v_tids, v_cs, v_lock
      FROM (SELECT x.c, (SELECT q.ctid FROM df.nodes q WHERE q.instance_id = p_instance_id AND q.id = (x.c ->> 'id')::varchar) AS tid
              FROM jsonb_array_elements(coalesce(p_changes -> 'nodes', '[]'::jsonb)) AS x(c)
            OFFSET 0) t  -- not pulled up: the subquery would run once per reference to t.tid
     WHERE t.tid IS NOT NULL;

    IF v_lock IS NOT NULL THEN
        -- We hold the instance row; waiting here for a node row another worker holds (a RACE loser still
        -- running when a loop re-activates it) would deadlock with that worker's checkpoint. NOWAIT fails
        -- instead (55P03); the engine rolls back and retries later. Only leaves and loops are ever
        -- claimed, so the engine marks the other rows "nowait": false.
        PERFORM 1 FROM df.nodes n WHERE n.ctid = ANY (v_lock) FOR UPDATE NOWAIT;
    END IF;
    IF v_tids IS NOT NULL THEN
        -- A parameterized TID scan per change. No instance_id condition: it would offer the planner the
        -- instance's index range again. The ctids came from this instance's rows just now.
        UPDATE df.nodes n SET
            status = CASE WHEN x.c ? 'status' THEN x.c ->> 'status' ELSE n.status END,
            result = CASE WHEN x.c ? 'result' THEN (x.c ->> 'result')::jsonb ELSE n.result END,
            status_details = CASE WHEN x.c ? 'stamp' THEN jsonb_build_object('execution_id', x.c ->> 'stamp') ELSE n.status_details END,
            run_at = CASE WHEN x.c ? 'run_at' THEN (x.c ->> 'run_at')::timestamptz ELSE n.run_at END,
            locked_until = CASE WHEN x.c ? 'locked_until' THEN (x.c ->> 'locked_until')::timestamptz ELSE n.locked_until END,
            attempts = CASE WHEN x.c ? 'attempts' THEN (x.c ->> 'attempts')::integer ELSE n.attempts END,
            state = CASE WHEN coalesce((x.c ->> 'signal_floor')::boolean, false)
                         THEN coalesce(x.c -> 'state', '{}'::jsonb) || jsonb_build_object('after_signal_id',
                              (SELECT coalesce(max(s.id), 0) FROM df.signals s WHERE s.instance_id = p_instance_id))
                         WHEN x.c ? 'state' THEN x.c -> 'state' ELSE n.state END,
            updated_at = now()
          FROM unnest(v_tids, v_cs) AS x(tid, c)
         WHERE n.ctid = x.tid;
        -- A row another transaction updated between the ctid probe and here has a new ctid: the UPDATE
        -- finds nothing at the old one and would drop that change without an error. Fail as a lock
        -- conflict instead (55P03): the engine rolls back and runs the step again shortly.
        GET DIAGNOSTICS v_written = ROW_COUNT;
        IF v_written <> cardinality(v_tids) THEN
            RAISE EXCEPTION 'pgflare: a node row of instance % changed under its checkpoint', p_instance_id
                USING ERRCODE = '55P03';
        END IF;
    END IF;

    IF jsonb_array_length(coalesce(p_changes -> 'scopes', '[]'::jsonb)) > 0
       OR jsonb_array_length(coalesce(p_changes -> 'events', '[]'::jsonb)) > 0 THEN
        SELECT i.submitted_by INTO v_owner FROM df.instances i WHERE i.id = p_instance_id;
    END IF;

    -- Most checkpoints touch two or three nodes and nothing else: skip the statements with no work.
    IF jsonb_array_length(coalesce(p_changes -> 'scopes', '[]'::jsonb)) > 0 THEN
    INSERT INTO df.scopes AS s (instance_id, scope_id, parent_scope, root_node, generation, named, status, result, submitted_by)
    SELECT p_instance_id, c ->> 'id', c ->> 'parent', c ->> 'root', coalesce((c ->> 'generation')::integer, 1),
           coalesce(c -> 'named', '{}'::jsonb), coalesce(c ->> 'status', 'running'), c ->> 'result', v_owner
      FROM jsonb_array_elements(coalesce(p_changes -> 'scopes', '[]'::jsonb)) c
    ON CONFLICT (instance_id, scope_id) DO UPDATE SET
        generation = EXCLUDED.generation,
        named = EXCLUDED.named,
        status = EXCLUDED.status,
        result = EXCLUDED.result;
    END IF;

    IF jsonb_array_length(coalesce(p_changes -> 'scope_deletes', '[]'::jsonb)) > 0 THEN
    DELETE FROM df.scopes s
     WHERE s.instance_id = p_instance_id
       AND s.scope_id IN (SELECT jsonb_array_elements_text(p_changes -> 'scope_deletes'));
    END IF;

    -- Cancelled scopes (a RACE loser): withdraw their queued rows and drop them and their nested scopes.
    IF jsonb_array_length(coalesce(p_changes -> 'cancel_scopes', '[]'::jsonb)) > 0 THEN
    -- SKIP LOCKED: we hold the instance row and must not wait for a node row (DESIGN 7); a loser step
    -- that is running finds its scope gone at its own checkpoint.
    UPDATE df.nodes n SET run_at = NULL, updated_at = now()
     WHERE (n.instance_id, n.id) IN (
        SELECT q.instance_id, q.id
          FROM df.nodes q, jsonb_array_elements_text(coalesce(p_changes -> 'cancel_scopes', '[]'::jsonb)) p
         WHERE q.instance_id = p_instance_id AND q.run_at IS NOT NULL
           AND starts_with(q.status_details ->> 'execution_id', p || '::')
           FOR UPDATE OF q SKIP LOCKED);
    DELETE FROM df.scopes s
     USING jsonb_array_elements_text(coalesce(p_changes -> 'cancel_scopes', '[]'::jsonb)) p
     WHERE s.instance_id = p_instance_id AND (s.scope_id = p OR starts_with(s.scope_id, p || '::'));
    END IF;

    IF p_changes ? 'instance' THEN
        UPDATE df.instances i SET
            status = coalesce(p_changes -> 'instance' ->> 'status', i.status),
            output = CASE WHEN p_changes -> 'instance' ? 'output' THEN p_changes -> 'instance' ->> 'output' ELSE i.output END,
            generation = coalesce((p_changes -> 'instance' ->> 'generation')::integer, i.generation),
            completed_at = CASE WHEN p_changes -> 'instance' ->> 'status' = 'completed' THEN now() ELSE i.completed_at END,
            updated_at = now()
         WHERE i.id = p_instance_id AND i.status NOT IN ('completed', 'failed', 'cancelled');
    END IF;

    IF jsonb_array_length(coalesce(p_changes -> 'events', '[]'::jsonb)) > 0 THEN
    INSERT INTO df.events (instance_id, node_id, kind, attempt, detail, submitted_by)
    SELECT p_instance_id, e ->> 'node_id', e ->> 'kind', (e ->> 'attempt')::integer, e ->> 'detail', v_owner
      FROM jsonb_array_elements(p_changes -> 'events') e;
    END IF;
END
$$;


-- A checkpoint the worker computed from its own cached copy of the rows it needs (the state its previous
-- checkpoint of this instance left) instead of reading them first: one round trip less per step. It is
-- written only if those rows are still what the worker thinks they are. p_expect = the rows the state
-- machine was given, in _lock_and_load's shape keyed by id: {instance: {status, generation},
-- nodes: {id: {id, status, stamp, state}}, scopes: {id: {id, parent, root, generation, named, status,
-- result} | null (expected absent)}}. Anything else raises PFS01 and writes nothing; the engine rolls back
-- to its savepoint and checkpoints again from a fresh read. The instance row is locked first, as in
-- _lock_and_load, so from here on nobody else can change them. The comparison is field by field,
-- exactly the fields _lock_and_load returns (a node's state: SQL NULL and JSON null are the same there).
CREATE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb, p_expect jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_instance jsonb;
BEGIN
    SELECT jsonb_build_object('status', i.status, 'generation', i.generation)
      INTO v_instance
      FROM df.instances i WHERE i.id = p_instance_id
       FOR NO KEY UPDATE;  -- as in _lock_and_load: serializes checkpoints, lets df.signal's FK check through
    -- One statement, a primary-key probe per expected row (correlated subqueries; no join to misplan).
    IF v_instance IS DISTINCT FROM p_expect -> 'instance'
       OR EXISTS (SELECT 1 FROM jsonb_each(p_expect -> 'nodes') AS e(k, x)
                   WHERE NOT EXISTS (
                         SELECT 1 FROM df.nodes n
                          WHERE n.instance_id = p_instance_id AND n.id = e.k::varchar
                            AND n.status = e.x ->> 'status'
                            AND (n.status_details ->> 'execution_id') IS NOT DISTINCT FROM (e.x ->> 'stamp')
                            AND coalesce(n.state, 'null'::jsonb) = coalesce(e.x -> 'state', 'null'::jsonb)))
       OR EXISTS (SELECT 1 FROM jsonb_each(p_expect -> 'scopes') AS e(k, x)
                   WHERE CASE WHEN e.x = 'null'::jsonb
                         THEN EXISTS (SELECT 1 FROM df.scopes s WHERE s.instance_id = p_instance_id AND s.scope_id = e.k)
                         ELSE NOT EXISTS (
                              SELECT 1 FROM df.scopes s
                               WHERE s.instance_id = p_instance_id AND s.scope_id = e.k
                                 AND s.parent_scope IS NOT DISTINCT FROM (e.x ->> 'parent')
                                 AND s.root_node = (e.x ->> 'root')::varchar
                                 AND s.generation = (e.x ->> 'generation')::integer
                                 AND s.named = e.x -> 'named'
                                 AND s.status = e.x ->> 'status'
                                 AND s.result IS NOT DISTINCT FROM (e.x ->> 'result'))
                         END) THEN
        RAISE EXCEPTION 'pgflare: checkpoint of instance % computed from a stale copy', p_instance_id
            USING ERRCODE = 'PFS01';  -- internal: the engine catches it and reads afresh
    END IF;
    PERFORM df._apply(p_instance_id, p_changes);
END
$$;

-- 0017's df._claim with the same signature, columns and role-limit path. Without limits, the row's claim
-- and the join that brings its instance, owner and scope are one statement (a CTE) instead of a SELECT
-- INTO and a RETURN QUERY, and the superuser gate is read inline instead of through df._setting (a SQL
-- function, planned on every call): 206 -> 124 us per call in a 3 000-call loop on this machine.
CREATE OR REPLACE FUNCTION df._claim(p_now timestamptz, p_instance_id varchar DEFAULT NULL, p_node_id varchar DEFAULT NULL)
RETURNS TABLE (
    instance_id varchar, id varchar, node_type text, query text, result_name text, status text, stamp text,
    state jsonb, attempts integer, run_at timestamptz, options jsonb, instance_status text, root_node varchar,
    label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean,
    superuser_gate text, named jsonb, scope_status text, input text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
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
        -- No limits (the usual case): the claim and what comes with it are one statement.
        IF p_instance_id IS NULL THEN
            RETURN QUERY
            WITH c AS (SELECT * FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
                   c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
                   i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
                   coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
                   s.named, s.status, i.input::text
              FROM c JOIN df.instances i ON i.id = c.instance_id
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
              LEFT JOIN df.scopes s ON s.instance_id = c.instance_id
                                   AND s.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$');
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
              FROM c JOIN df.instances i ON i.id = c.instance_id
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
              LEFT JOIN df.scopes s ON s.instance_id = c.instance_id
                                   AND s.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$');
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
