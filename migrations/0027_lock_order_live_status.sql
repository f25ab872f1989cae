-- 0027_lock_order_live_status: the worker never takes part in a deadlock with an outside transaction
-- (DESIGN 7; issue 16 item 1), and a pending instance whose first claim is running reads as running
-- (issue 16 item 3; second half of this file).
--
-- Lock order.
--
-- A checkpoint holds its node row (the claim) and then locks the instance row. pgflare's own functions
-- lock the other way round only with SKIP LOCKED or NOWAIT on node rows, but an operator's transaction
-- may update an instance's row and then its nodes (a repair by hand), or its nodes and then the instance.
-- When the worker waited for that instance row (or for a node row the operator held), PostgreSQL found
-- the cycle and aborted whichever session's deadlock_timeout ran out first: usually the operator's, which
-- had been waiting longest. Now the worker, while it holds a node row:
--   * takes the instance row with SKIP LOCKED; only when that finds it busy does it wait for it, and
--     only when no other session is waiting for this transaction, and for at most half of
--     deadlock_timeout (lock_timeout, restored after). A session that starts waiting for the worker afterwards runs its
--     deadlock check later than that, by which time the worker has the row or has given up. Otherwise
--     (or on the timeout) it fails with 55P03: the engine rolls the attempt back and tries again shortly
--     (a claimed row steps aside, a lease's checkpoint retries, a batch runs its rows one at a time);
--   * takes every node row a checkpoint writes with NOWAIT, composite rows too (before, only the
--     claimable ones: nothing in pgflare holds a composite row without the instance row first).
-- Uncontended, the instance lock costs what it did (one statement); df._apply without p_expect now locks
-- the instance row itself (a primary-key probe on a row usually already held).
--
-- df.scopes rows are the engine's own: an outside transaction that locks them and then waits for a node
-- row can still deadlock with a checkpoint.

-- df._lock_and_load (0019): the instance row by SKIP LOCKED, then waiting only as above.
CREATE OR REPLACE FUNCTION df._lock_and_load(p_instance_id varchar, p_node_ids varchar[], p_scope_ids text[]) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_instance jsonb;
    v_nodes jsonb := '[]'::jsonb;
    v_node jsonb;
    v_id varchar;
    v_lock_timeout text;
BEGIN
    -- NO KEY UPDATE serializes checkpoints, yet lets df.signal's FK check (KEY SHARE) through. SKIP
    -- LOCKED first: the caller holds a node row (0027).
    SELECT jsonb_build_object('status', i.status, 'generation', i.generation)
      INTO v_instance
      FROM df.instances i WHERE i.id = p_instance_id
       FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM df.instances i WHERE i.id = p_instance_id) THEN
        -- Busy. A session waiting for this transaction may be the one holding the row: waiting could close
        -- a cycle whose deadlock check, already armed in that session, would abort it. Otherwise wait, for
        -- less than half of deadlock_timeout.
        IF EXISTS (SELECT 1 FROM pg_locks l WHERE NOT l.granted AND pg_backend_pid() = ANY (pg_blocking_pids(l.pid))) THEN
            RAISE EXCEPTION 'pgflare: instance % is locked, and another session is waiting for this checkpoint', p_instance_id
                USING ERRCODE = '55P03';
        END IF;
        v_lock_timeout := current_setting('lock_timeout');
        PERFORM set_config('lock_timeout',
            (SELECT greatest(1, s.setting::integer / 2)::text || 'ms' FROM pg_settings s WHERE s.name = 'deadlock_timeout'), true);
        SELECT jsonb_build_object('status', i.status, 'generation', i.generation)
          INTO v_instance
          FROM df.instances i WHERE i.id = p_instance_id
           FOR NO KEY UPDATE;
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
    END IF;
    -- One primary-key lookup per id.
    FOREACH v_id IN ARRAY p_node_ids LOOP
        SELECT jsonb_build_object('id', n.id, 'status', n.status, 'stamp', n.status_details ->> 'execution_id', 'state', n.state)
          INTO v_node
          FROM df.nodes n WHERE n.instance_id = p_instance_id AND n.id = v_id;
        IF FOUND THEN
            v_nodes := v_nodes || jsonb_build_array(v_node);
        END IF;
    END LOOP;
    RETURN jsonb_build_object(
        'instance', v_instance,
        'nodes', v_nodes,
        'scopes', coalesce((
            SELECT jsonb_agg(x.s)
              FROM (SELECT (SELECT jsonb_build_object('id', s.scope_id, 'parent', s.parent_scope, 'root', s.root_node,
                                       'generation', s.generation, 'named', s.named, 'status', s.status, 'result', s.result)
                              FROM df.scopes s WHERE s.instance_id = p_instance_id AND s.scope_id = u.id) AS s
                      FROM unnest(p_scope_ids) AS u(id)
                    OFFSET 0) x  -- not pulled up: the probe runs once per id
             WHERE x.s IS NOT NULL), '[]'::jsonb));
END
$$;

-- df._apply (0020): the instance row locked by every call (SKIP LOCKED, then waiting only as above), and every
-- changed node row probed with NOWAIT.
CREATE OR REPLACE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb, p_expect jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_instance jsonb;
    v_owner regrole;
    v_tids tid[];
    v_cs jsonb[];
    v_written integer;
    v_scope text;
    v_lock_timeout text;
BEGIN
    -- ===== The instance row, locked as in df._lock_and_load =====
    -- Always: a write with no p_expect after df._lock_and_load finds the row already ours (no wait, no
    -- write); an activation, a lease's audit entry or a blocked instance's failure lock it here, before
    -- they update it or insert rows whose foreign key checks it.
    SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
      INTO v_instance, v_owner
      FROM df.instances i WHERE i.id = p_instance_id
       FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM df.instances i WHERE i.id = p_instance_id) THEN
        -- Busy. A session waiting for this transaction may be the one holding the row: waiting could close
        -- a cycle whose deadlock check, already armed in that session, would abort it. Otherwise wait, for
        -- less than half of deadlock_timeout.
        IF EXISTS (SELECT 1 FROM pg_locks l WHERE NOT l.granted AND pg_backend_pid() = ANY (pg_blocking_pids(l.pid))) THEN
            RAISE EXCEPTION 'pgflare: instance % is locked, and another session is waiting for this checkpoint', p_instance_id
                USING ERRCODE = '55P03';
        END IF;
        v_lock_timeout := current_setting('lock_timeout');
        PERFORM set_config('lock_timeout',
            (SELECT greatest(1, s.setting::integer / 2)::text || 'ms' FROM pg_settings s WHERE s.name = 'deadlock_timeout'), true);
        SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
          INTO v_instance, v_owner
          FROM df.instances i WHERE i.id = p_instance_id
           FOR NO KEY UPDATE;
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
    END IF;

    -- ===== GUARD: the copy the checkpoint was computed from is still what the rows say =====
    IF p_expect IS NOT NULL THEN
        IF v_instance IS DISTINCT FROM p_expect -> 'instance'
           OR EXISTS (SELECT 1 FROM jsonb_each(p_expect -> 'nodes') AS e(k, x)
                       WHERE NOT EXISTS (
                             SELECT 1 FROM df.nodes n
                              WHERE n.instance_id = p_instance_id AND n.id = e.k::varchar
                                AND n.status = e.x ->> 'status'
                                AND (n.status_details ->> 'execution_id') IS NOT DISTINCT FROM (e.x ->> 'stamp')
                                AND coalesce(n.state, 'null'::jsonb) = coalesce(e.x -> 'state', 'null'::jsonb)
                             OFFSET 0))
           OR EXISTS (SELECT 1 FROM jsonb_each(p_expect -> 'scopes') AS e(k, x)
                       WHERE CASE WHEN e.x = 'null'::jsonb
                             THEN EXISTS (SELECT 1 FROM df.scopes s WHERE s.instance_id = p_instance_id AND s.scope_id = e.k OFFSET 0)
                             ELSE NOT EXISTS (
                                  SELECT 1 FROM df.scopes s
                                   WHERE s.instance_id = p_instance_id AND s.scope_id = e.k
                                     AND s.parent_scope IS NOT DISTINCT FROM (e.x ->> 'parent')
                                     AND s.root_node = (e.x ->> 'root')::varchar
                                     AND s.generation = (e.x ->> 'generation')::integer
                                     AND s.named = e.x -> 'named'
                                     AND s.status = e.x ->> 'status'
                                     AND s.result IS NOT DISTINCT FROM (e.x ->> 'result')
                                  OFFSET 0)
                             END) THEN
            RAISE EXCEPTION 'pgflare: checkpoint of instance % computed from a stale copy', p_instance_id
                USING ERRCODE = 'PFS01';  -- internal: the engine catches it and reads afresh
        END IF;
    END IF;

    -- ===== PHASE: write =====
    -- Each changed row's ctid by a correlated primary-key probe per change: as a subquery its only plan
    -- is the probe on both key columns (a join was planned as a scan of the instance's rows when the
    -- generic plan guesses 100 changes). The changes are unpacked inline: df._node_changes, a SQL
    -- function, was planned afresh on every call (SQL functions keep no plans across calls), ~0.1 ms.
    SELECT array_agg(t.tid), array_agg(t.c)
      INTO v_tids, v_cs
      FROM (SELECT x.c, (SELECT q.ctid FROM df.nodes q WHERE q.instance_id = p_instance_id AND q.id = (x.c ->> 'id')::varchar) AS tid
              FROM jsonb_array_elements(coalesce(p_changes -> 'nodes', '[]'::jsonb)) AS x(c)
            OFFSET 0) t  -- not pulled up: the subquery would run once per reference to t.tid
     WHERE t.tid IS NOT NULL;

    IF v_tids IS NOT NULL THEN
        -- We hold the instance row; waiting here for a node row another worker holds (a RACE loser still
        -- running when a loop re-activates it) would deadlock with that worker's checkpoint, and one an
        -- outside transaction holds (an operator's UPDATE of the instance's nodes, on its way to the
        -- instance row) would deadlock with that transaction. NOWAIT fails instead (55P03); the engine
        -- rolls back and retries later. Every changed row: since 0027 composite rows too.
        PERFORM 1 FROM df.nodes n WHERE n.ctid = ANY (v_tids) FOR UPDATE NOWAIT;
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

    IF v_owner IS NULL AND (jsonb_array_length(coalesce(p_changes -> 'scopes', '[]'::jsonb)) > 0
       OR jsonb_array_length(coalesce(p_changes -> 'events', '[]'::jsonb)) > 0) THEN
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
    -- One DELETE per id, on both key columns: a probe of scopes_pkey each. As IN (SELECT …) or = ANY(…),
    -- the generic plan, told by the statistics that an instance has a few scopes, read every scope of
    -- the instance and filtered: 1 500 rows read to delete one (test/engine/plans.test.ts).
    FOR v_scope IN SELECT jsonb_array_elements_text(p_changes -> 'scope_deletes') LOOP
        DELETE FROM df.scopes s WHERE s.instance_id = p_instance_id AND s.scope_id = v_scope;
    END LOOP;
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

-- df._apply_many (0023): the instances by SKIP LOCKED, busy ones waited for only as above; every changed node
-- row probed with NOWAIT.
CREATE OR REPLACE FUNCTION df._apply_many(p_items jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_ids varchar[];
    v_itids tid[];
    v_tids tid[];
    v_cs jsonb[];
    v_iids varchar[];
    v_written integer;
    v_tid tid;
    k integer;
    v_lock_timeout text;
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_items) t
                WHERE jsonb_array_length(coalesce(t -> 'changes' -> 'scope_deletes', '[]'::jsonb)) > 0
                   OR jsonb_array_length(coalesce(t -> 'changes' -> 'cancel_scopes', '[]'::jsonb)) > 0) THEN
        RAISE EXCEPTION 'pgflare: df._apply_many takes no scope deletes or cancelled scopes' USING ERRCODE = 'PFB01';
    END IF;

    -- ===== Lock the instances, in id order =====
    SELECT array_agg(t.id ORDER BY t.id) INTO v_ids
      FROM (SELECT DISTINCT (t ->> 'id')::varchar AS id FROM jsonb_array_elements(p_items) t) t;
    -- Correlated probes in id order, each row locked as it is read (LockRows above the ordered scan).
    -- SKIP LOCKED, as in df._lock_and_load: the batch holds its node rows; busy instance rows (a null
    -- ctid here) are waited for as there, in id order.
    SELECT array_agg(l.tid ORDER BY l.ord) INTO v_itids
      FROM (SELECT u.ord, (SELECT i.ctid FROM df.instances i WHERE i.id = u.id FOR NO KEY UPDATE SKIP LOCKED) AS tid
              FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
             ORDER BY u.ord
            OFFSET 0) l;
    IF array_position(v_itids, NULL) IS NOT NULL THEN
        FOR k IN 1 .. cardinality(v_ids) LOOP
            IF v_itids[k] IS NULL AND EXISTS (SELECT 1 FROM df.instances i WHERE i.id = v_ids[k]) THEN
                -- Busy. A session waiting for this transaction may be the one holding the row: waiting could close
                -- a cycle whose deadlock check, already armed in that session, would abort it. Otherwise wait, for
                -- less than half of deadlock_timeout.
                IF EXISTS (SELECT 1 FROM pg_locks l WHERE NOT l.granted AND pg_backend_pid() = ANY (pg_blocking_pids(l.pid))) THEN
                    RAISE EXCEPTION 'pgflare: instance % is locked, and another session is waiting for this checkpoint', v_ids[k]
                        USING ERRCODE = '55P03';
                END IF;
                v_lock_timeout := current_setting('lock_timeout');
                PERFORM set_config('lock_timeout',
                    (SELECT greatest(1, s.setting::integer / 2)::text || 'ms' FROM pg_settings s WHERE s.name = 'deadlock_timeout'), true);
                SELECT i.ctid INTO v_tid FROM df.instances i WHERE i.id = v_ids[k] FOR NO KEY UPDATE;
                v_itids[k] := v_tid;
                PERFORM set_config('lock_timeout', v_lock_timeout, true);
            END IF;
        END LOOP;
    END IF;

    -- ===== GUARD: each item's copy is still what the rows say (as df._apply, 0020) =====
    IF EXISTS (
        SELECT 1 FROM jsonb_array_elements(p_items) t
         WHERE jsonb_typeof(t -> 'expect') = 'object' AND (
               (SELECT jsonb_build_object('status', i.status, 'generation', i.generation)
                  FROM df.instances i WHERE i.id = (t ->> 'id')::varchar OFFSET 0) IS DISTINCT FROM t -> 'expect' -> 'instance'
            OR EXISTS (SELECT 1 FROM jsonb_each(t -> 'expect' -> 'nodes') AS e(k, x)
                        WHERE NOT EXISTS (
                              SELECT 1 FROM df.nodes n
                               WHERE n.instance_id = (t ->> 'id')::varchar AND n.id = e.k::varchar
                                 AND n.status = e.x ->> 'status'
                                 AND (n.status_details ->> 'execution_id') IS NOT DISTINCT FROM (e.x ->> 'stamp')
                                 AND coalesce(n.state, 'null'::jsonb) = coalesce(e.x -> 'state', 'null'::jsonb)
                              OFFSET 0))
            OR EXISTS (SELECT 1 FROM jsonb_each(t -> 'expect' -> 'scopes') AS e(k, x)
                        WHERE CASE WHEN e.x = 'null'::jsonb
                              THEN EXISTS (SELECT 1 FROM df.scopes s
                                            WHERE s.instance_id = (t ->> 'id')::varchar AND s.scope_id = e.k OFFSET 0)
                              ELSE NOT EXISTS (
                                   SELECT 1 FROM df.scopes s
                                    WHERE s.instance_id = (t ->> 'id')::varchar AND s.scope_id = e.k
                                      AND s.parent_scope IS NOT DISTINCT FROM (e.x ->> 'parent')
                                      AND s.root_node = (e.x ->> 'root')::varchar
                                      AND s.generation = (e.x ->> 'generation')::integer
                                      AND s.named = e.x -> 'named'
                                      AND s.status = e.x ->> 'status'
                                      AND s.result IS NOT DISTINCT FROM (e.x ->> 'result')
                                   OFFSET 0)
                              END))) THEN
        RAISE EXCEPTION 'pgflare: a checkpoint in a batch was computed from a stale copy' USING ERRCODE = 'PFS01';
    END IF;

    -- ===== Nodes: each change's row by a primary-key probe, then one TID update =====
    SELECT array_agg(u.tid), array_agg(u.c), array_agg(u.iid)
      INTO v_tids, v_cs, v_iids
      FROM (SELECT (t ->> 'id')::varchar AS iid, x.c,
                   (SELECT q.ctid FROM df.nodes q WHERE q.instance_id = (t ->> 'id')::varchar AND q.id = (x.c ->> 'id')::varchar) AS tid
              FROM jsonb_array_elements(p_items) t,
                   jsonb_array_elements(coalesce(t -> 'changes' -> 'nodes', '[]'::jsonb)) AS x(c)
            OFFSET 0) u
     WHERE u.tid IS NOT NULL;
    IF v_tids IS NOT NULL THEN
        PERFORM 1 FROM df.nodes n WHERE n.ctid = ANY (v_tids) FOR UPDATE NOWAIT;  -- as in df._apply
        UPDATE df.nodes n SET
            status = CASE WHEN x.c ? 'status' THEN x.c ->> 'status' ELSE n.status END,
            result = CASE WHEN x.c ? 'result' THEN (x.c ->> 'result')::jsonb ELSE n.result END,
            status_details = CASE WHEN x.c ? 'stamp' THEN jsonb_build_object('execution_id', x.c ->> 'stamp') ELSE n.status_details END,
            run_at = CASE WHEN x.c ? 'run_at' THEN (x.c ->> 'run_at')::timestamptz ELSE n.run_at END,
            locked_until = CASE WHEN x.c ? 'locked_until' THEN (x.c ->> 'locked_until')::timestamptz ELSE n.locked_until END,
            attempts = CASE WHEN x.c ? 'attempts' THEN (x.c ->> 'attempts')::integer ELSE n.attempts END,
            state = CASE WHEN coalesce((x.c ->> 'signal_floor')::boolean, false)
                         THEN coalesce(x.c -> 'state', '{}'::jsonb) || jsonb_build_object('after_signal_id',
                              (SELECT coalesce(max(s.id), 0) FROM df.signals s WHERE s.instance_id = x.iid))
                         WHEN x.c ? 'state' THEN x.c -> 'state' ELSE n.state END,
            updated_at = now()
          FROM unnest(v_tids, v_cs, v_iids) AS x(tid, c, iid)
         WHERE n.ctid = x.tid;
        GET DIAGNOSTICS v_written = ROW_COUNT;
        IF v_written <> cardinality(v_tids) THEN
            RAISE EXCEPTION 'pgflare: a node row changed under a batch''s checkpoint' USING ERRCODE = '55P03';
        END IF;
    END IF;

    -- ===== Scopes, instances, events =====
    INSERT INTO df.scopes AS s (instance_id, scope_id, parent_scope, root_node, generation, named, status, result, submitted_by)
    SELECT (t ->> 'id')::varchar, c ->> 'id', c ->> 'parent', c ->> 'root', coalesce((c ->> 'generation')::integer, 1),
           coalesce(c -> 'named', '{}'::jsonb), coalesce(c ->> 'status', 'running'), c ->> 'result',
           (SELECT i.submitted_by FROM df.instances i WHERE i.id = (t ->> 'id')::varchar)
      FROM jsonb_array_elements(p_items) t,
           jsonb_array_elements(coalesce(t -> 'changes' -> 'scopes', '[]'::jsonb)) c
    ON CONFLICT (instance_id, scope_id) DO UPDATE SET
        generation = EXCLUDED.generation,
        named = EXCLUDED.named,
        status = EXCLUDED.status,
        result = EXCLUDED.result;

    -- The instance rows are locked (above), so their ctids hold: a TID update each.
    UPDATE df.instances i SET
        status = coalesce(x.c ->> 'status', i.status),
        output = CASE WHEN x.c ? 'output' THEN x.c ->> 'output' ELSE i.output END,
        generation = coalesce((x.c ->> 'generation')::integer, i.generation),
        completed_at = CASE WHEN x.c ->> 'status' = 'completed' THEN now() ELSE i.completed_at END,
        updated_at = now()
      FROM (SELECT v_itids[array_position(v_ids, (t ->> 'id')::varchar)] AS tid, t -> 'changes' -> 'instance' AS c
              FROM jsonb_array_elements(p_items) t
             WHERE t -> 'changes' ? 'instance'
            OFFSET 0) x
     WHERE i.ctid = x.tid AND i.status NOT IN ('completed', 'failed', 'cancelled');

    INSERT INTO df.events (instance_id, node_id, kind, attempt, detail, submitted_by)
    SELECT (t ->> 'id')::varchar, e ->> 'node_id', e ->> 'kind', (e ->> 'attempt')::integer, e ->> 'detail',
           (SELECT i.submitted_by FROM df.instances i WHERE i.id = (t ->> 'id')::varchar)
      FROM jsonb_array_elements(p_items) t,
           jsonb_array_elements(coalesce(t -> 'changes' -> 'events', '[]'::jsonb)) e;
END
$$;

-- ===================================================================================================
-- A live "running" status (issue 16 item 3).
--
-- An instance's first step runs in the transaction that activates it (src/engine/activate.ts): until
-- that commits, df.instances says 'pending'. The claim of a pending instance's row now also takes a
-- transaction-level shared advisory lock, key (1885824620 = 'pgfl', hashtext(instance id)), in the same
-- statement (src/engine/queries/claim.ts, claimSettings): no extra round trip or commit. Other sessions
-- see it in pg_locks (locktype 'advisory', classid 1885824620, objid the hash, objsubid 2 for a two-int4
-- key) until the activating transaction ends, and the status functions report such a pending instance
-- as 'running'. A hash shared by another pending instance shows that one as running too, only while the
-- claim runs. df.instances itself keeps the committed status. (No helper function: df.grant_usage grants
-- every function of the schema, and a delegate granted before this migration could not pass a new one on.)

CREATE OR REPLACE FUNCTION df.status(instance_id text) RETURNS text
LANGUAGE sql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN i.status = 'pending' AND EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2
                    AND l.objid = hashtext(i.id)::oid AND l.granted
                    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                THEN 'running' ELSE i.status END
      FROM df.instances AS i WHERE i.id = $1
$$;

CREATE OR REPLACE FUNCTION df.instance_info(instance_id text)
RETURNS TABLE (instance_id text, label text, function_name text, function_version text,
               current_execution_id bigint, status text, output text)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.id::text, i.label, 'pg_durable::orchestration::execute-function-graph'::text,
           '1.0.0'::text, i.generation::bigint,
           CASE WHEN i.status = 'pending' AND EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2
                    AND l.objid = hashtext(i.id)::oid AND l.granted
                    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                THEN 'running' ELSE i.status END, i.output
    FROM df.instances AS i
    WHERE i.id = $1
$$;

-- df.list_instances (0006), both overloads: the status as above, with one scan of pg_locks per call; a
-- status filter applies to it.
CREATE OR REPLACE FUNCTION df.list_instances(status_filter text DEFAULT NULL, limit_count integer DEFAULT 100)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer := df._list_limit(list_instances.limit_count);
    v_live  oid[] := ARRAY(SELECT l.objid FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2 AND l.granted
                     AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()));
BEGIN
    RETURN QUERY
        SELECT i.id::text, i.label, 'pg_durable::orchestration::execute-function-graph'::text,
               x.status, i.generation::bigint, i.output
        FROM df.instances AS i
        CROSS JOIN LATERAL (SELECT CASE WHEN i.status = 'pending' AND hashtext(i.id)::oid = ANY (v_live)
                                        THEN 'running' ELSE i.status END AS status) AS x
        WHERE list_instances.status_filter IS NULL OR x.status = list_instances.status_filter
        ORDER BY i.created_at DESC, i.id
        LIMIT v_limit;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- list_instances, paginated overload (3–4 arguments; no defaults on the first three, so the two
-- overloads never collide). Keyset on (created_at DESC, id ASC); one extra row tells whether a
-- further page exists.

CREATE OR REPLACE FUNCTION df.list_instances(status_filter text, limit_count integer, label_filter text,
                                  after_cursor text DEFAULT NULL)
RETURNS TABLE (instance_id text, label text, function_name text, status text,
               execution_count bigint, output text, created_at timestamptz,
               completed_at timestamptz, next_cursor text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer := df._list_limit(list_instances.limit_count);
    v_ts    timestamptz;
    v_id    text;
    v_live  oid[] := ARRAY(SELECT l.objid FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2 AND l.granted
                     AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()));
BEGIN
    IF list_instances.after_cursor IS NOT NULL THEN
        SELECT c.o_created_at, c.o_id INTO v_ts, v_id FROM df._list_cursor_decode(list_instances.after_cursor) AS c;
    END IF;

    RETURN QUERY
        WITH page AS (
            SELECT i.id, i.label, x.status, i.generation, i.output, i.created_at, i.completed_at
            FROM df.instances AS i
            CROSS JOIN LATERAL (SELECT CASE WHEN i.status = 'pending' AND hashtext(i.id)::oid = ANY (v_live)
                                            THEN 'running' ELSE i.status END AS status) AS x
            WHERE i.created_at IS NOT NULL
              AND (list_instances.status_filter IS NULL OR x.status = list_instances.status_filter)
              AND (list_instances.label_filter IS NULL OR i.label = list_instances.label_filter)
              AND (v_ts IS NULL OR (i.created_at <= v_ts
                                    AND (i.created_at < v_ts OR (i.created_at = v_ts AND i.id > v_id))))
            ORDER BY i.created_at DESC, i.id
            LIMIT v_limit::bigint + 1
        ), numbered AS (
            SELECT p.*, row_number() OVER (ORDER BY p.created_at DESC, p.id) AS rn,
                   count(*) OVER () AS fetched
            FROM page AS p
        )
        SELECT x.id::text, x.label, 'pg_durable::orchestration::execute-function-graph'::text,
               x.status, x.generation::bigint, x.output, x.created_at, x.completed_at,
               CASE WHEN x.fetched > v_limit
                    THEN max(CASE WHEN x.rn = v_limit THEN df._list_cursor(x.created_at, x.id) END) OVER ()
               END
        FROM numbered AS x
        WHERE x.rn <= v_limit
        ORDER BY x.rn;
END;
$$;


-- The comments of 0024, for what changed here.
COMMENT ON FUNCTION df._lock_and_load(varchar, varchar[], text[]) IS
    'Engine (worker only). Locks the instance row (FOR NO KEY UPDATE, after the caller''s node row: node, then instance) and returns {instance, nodes, scopes} for the ids asked for, so a checkpoint reads everything it needs in one round trip. The instance lock is SKIP LOCKED first; a busy row is waited for only while no session waits for this transaction, and for under half of deadlock_timeout, else 55P03 (the engine retries): an outside transaction locking in any order is never the one aborted by a deadlock with the worker.';
COMMENT ON FUNCTION df._apply(varchar, jsonb, jsonb) IS
    'Engine (worker only). Writes one checkpoint (the state machine''s changes to nodes, scopes, instance and events) of one instance. It first locks the instance row (after the node row the worker claimed) as df._lock_and_load does (a row already held costs nothing), and with p_expect checks the worker''s cached copy is still current (PFS01 if not, nothing written); every node row it writes is locked NOWAIT (55P03: the engine retries), never waited for.';
COMMENT ON FUNCTION df._apply_many(jsonb) IS
    'Engine (worker only). Writes the checkpoints of a batch of one-step instances in a few set-based statements: the instance rows first (after the claimed node rows; busy ones as in df._lock_and_load), every item''s stale-copy check (PFS01 fails the batch), the node rows NOWAIT (55P03), then the writes; lock order as df._apply.';
COMMENT ON FUNCTION df.status(text) IS 'An instance''s status (pending, running, completed, failed, cancelled), or NULL when the caller cannot see it. A pending instance whose first step is running (its claim holds the advisory lock (1885824620, hashtext(id))) reads as running.';
COMMENT ON FUNCTION df.list_instances(text, integer) IS 'The caller''s instances, newest first, optionally by status (a pending instance whose first step is running is listed as running, as by df.status).';
COMMENT ON FUNCTION df.list_instances(text, integer, text, text) IS 'The caller''s instances, newest first, by status and label, paged with a cursor (status as df.status reports it).';
COMMENT ON FUNCTION df.instance_info(text) IS 'One instance''s summary: id, label, status (as df.status reports it), generation, output.';
