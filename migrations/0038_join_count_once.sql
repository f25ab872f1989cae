-- 0038_join_count_once: a branch batch adds to its JOIN's count once (issue 20 item 2).
--
-- A branch batch (src/engine/branch-batch.ts) merges up to 16 branch writes of one JOIN into one
-- df._apply, each with its own join_max change, and 0036's df._apply added one to the JOIN's count per
-- change: up to 16 updates of the JOIN row in one transaction, each a new row version, and each after
-- the first re-ran the row's foreign key checks (its left and right nodes), because the version it
-- replaced was this transaction's. The JOIN row is the one row all branches queue for, so all of that
-- was time the others waited. Now:
--   * the join_max changes are grouped by JOIN: one UPDATE adds their number (refused, PFS01, when the
--     count would pass join_max, as before: the batch holds the JOIN's last branch);
--   * the JOIN row is locked FOR NO KEY UPDATE (0036: FOR UPDATE), as the UPDATE itself would lock it:
--     the count is no key, and a foreign key check of another session (KEY SHARE) need not wait for it.
--
-- df._apply (0036): unchanged otherwise.

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
    v_share boolean := coalesce((p_changes ->> 'share')::boolean, false);
    v_join jsonb;
    v_tid tid;
BEGIN
    -- ===== The instance row, locked as in df._lock_and_load =====
    -- Always: a write with no p_expect after df._lock_and_load finds the row already ours (no wait, no
    -- write); an activation, a lease's audit entry or a blocked instance's failure lock it here, before
    -- they update it or insert rows whose foreign key checks it.
    -- A branch's write (p_changes.share) takes the row FOR SHARE: branches of a JOIN write side by side,
    -- while every other checkpoint of the instance (NO KEY UPDATE) and df.cancel wait for them.
    IF v_share THEN
        IF p_expect IS NULL OR p_changes ? 'instance'
           OR jsonb_array_length(coalesce(p_changes -> 'scope_deletes', '[]'::jsonb)) > 0
           OR jsonb_array_length(coalesce(p_changes -> 'cancel_scopes', '[]'::jsonb)) > 0 THEN
            RAISE EXCEPTION 'pgflare: a branch''s write of instance % changes more than its branch', p_instance_id
                USING ERRCODE = 'PFS01';  -- done again from a fresh read, under the exclusive lock
        END IF;
        SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
          INTO v_instance, v_owner
          FROM df.instances i WHERE i.id = p_instance_id
           FOR SHARE SKIP LOCKED;
    ELSE
        SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
          INTO v_instance, v_owner
          FROM df.instances i WHERE i.id = p_instance_id
           FOR NO KEY UPDATE SKIP LOCKED;
    END IF;
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
        IF v_share THEN
            SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
              INTO v_instance, v_owner
              FROM df.instances i WHERE i.id = p_instance_id
               FOR SHARE;
        ELSE
            SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
              INTO v_instance, v_owner
              FROM df.instances i WHERE i.id = p_instance_id
               FOR NO KEY UPDATE;
        END IF;
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
                                AND (coalesce((e.x ->> 'any_state')::boolean, false)  -- a JOIN's counter, added to below
                                     OR coalesce(n.state, 'null'::jsonb) = coalesce(e.x -> 'state', 'null'::jsonb))
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
             WHERE NOT x.c ? 'join_max'
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

    -- A JOIN's count of finished branches, added to under the row's lock as the last write, so the lock
    -- is held only until the COMMIT that follows. Refused when the count would reach join_max + 1 (the
    -- branch is the last one: it must fire the JOIN, which a fresh read under the instance's exclusive
    -- lock does). The row is taken as the instance row is (SKIP LOCKED, then waiting only while no session
    -- waits for this transaction, under half of deadlock_timeout): only branches of the JOIN hold it, each
    -- for its COMMIT.
    -- One addition per JOIN however many of its branches the write finishes (a branch batch merges up to
    -- 16): one new row version, not one per branch (each further version of a row this transaction
    -- created also re-ran the row's foreign key checks).
    FOR v_join IN SELECT jsonb_build_object('id', x.c ->> 'id', 'add', count(*), 'join_max', min((x.c ->> 'join_max')::integer))
                    FROM jsonb_array_elements(coalesce(p_changes -> 'nodes', '[]'::jsonb)) AS x(c)
                   WHERE x.c ? 'join_max'
                   GROUP BY x.c ->> 'id' LOOP
        SELECT q.ctid INTO v_tid FROM df.nodes q
         WHERE q.instance_id = p_instance_id AND q.id = (v_join ->> 'id')::varchar
           FOR NO KEY UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM pg_locks l WHERE NOT l.granted AND pg_backend_pid() = ANY (pg_blocking_pids(l.pid))) THEN
                RAISE EXCEPTION 'pgflare: a JOIN of instance % is locked, and another session is waiting for this checkpoint', p_instance_id
                    USING ERRCODE = '55P03';
            END IF;
            v_lock_timeout := current_setting('lock_timeout');
            PERFORM set_config('lock_timeout',
                (SELECT greatest(1, s.setting::integer / 2)::text || 'ms' FROM pg_settings s WHERE s.name = 'deadlock_timeout'), true);
            SELECT q.ctid INTO v_tid FROM df.nodes q
             WHERE q.instance_id = p_instance_id AND q.id = (v_join ->> 'id')::varchar
               FOR NO KEY UPDATE;
            PERFORM set_config('lock_timeout', v_lock_timeout, true);
        END IF;
        UPDATE df.nodes n SET
            state = coalesce(n.state, '{}'::jsonb) || jsonb_build_object('done', coalesce((n.state ->> 'done')::integer, 0) + (v_join ->> 'add')::integer),
            updated_at = now()
         WHERE n.ctid = v_tid
           AND n.status = 'running'
           AND coalesce((n.state ->> 'done')::integer, 0) + (v_join ->> 'add')::integer <= (v_join ->> 'join_max')::integer;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pgflare: the last branch of a JOIN of instance % fires it from a fresh read', p_instance_id
                USING ERRCODE = 'PFS01';
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION df._apply(varchar, jsonb, jsonb) IS
    'Engine (worker only). Writes one checkpoint (the state machine''s changes to nodes, scopes, instance and events) of one instance. It first locks the instance row (after the node row the worker claimed) as df._lock_and_load does (a row already held costs nothing), and with p_expect checks the worker''s cached copy is still current (PFS01 if not, nothing written); every node row it writes is locked NOWAIT (55P03: the engine retries), never waited for. A JOIN branch''s write (p_changes.share) locks the instance row FOR SHARE instead, adds to the JOIN''s count in SQL, once per JOIN, the number of its changes with join_max (PFS01 when the write holds the last branch) and may change only its branch''s rows.';
