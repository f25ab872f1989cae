-- 0020_one_apply: a checkpoint's write is one function call, its stale-copy check included.
--
-- Since 0018 a checkpoint computed from the engine's copy called df._apply(id, changes, expect), which
-- checked the copy and then called df._apply(id, changes) for the write: a nested call through SPI, with
-- the inner function's own settings (search_path, enable_seqscan, plan_cache_mode) saved and restored
-- around it. pg_stat_statements put that nesting at about 0.09 ms of the outer call's 0.63 ms per one-step
-- instance (bench/profile.ts --statements). Now there is one function: with p_expect it locks the instance
-- row (reading its owner in the same statement), checks the copy and writes; without it, it writes, as
-- the 2-argument function did (its caller locked the instance in df._lock_and_load). Calls with two
-- arguments resolve to it through the default.
--
-- Error codes: PFS01 (internal: the copy is stale), 55P03 (a node row is held or moved; the engine retries).
DROP FUNCTION df._apply(varchar, jsonb, jsonb);
DROP FUNCTION df._apply(varchar, jsonb);

-- p_changes as documented in 0008; p_expect as built by the engine's expectation() (0018): the instance's
-- status and generation, and the node and scope rows the checkpoint assumed (a null scope: must not exist).
CREATE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb, p_expect jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_instance jsonb;
    v_owner regrole;
    v_tids tid[];
    v_lock tid[];
    v_cs jsonb[];
    v_written integer;
    v_scope text;
BEGIN
    -- ===== GUARD: the copy the checkpoint was computed from is still what the rows say =====
    IF p_expect IS NOT NULL THEN
        SELECT jsonb_build_object('status', i.status, 'generation', i.generation), i.submitted_by
          INTO v_instance, v_owner
          FROM df.instances i WHERE i.id = p_instance_id
           FOR NO KEY UPDATE;  -- as in _lock_and_load: serializes checkpoints, lets df.signal's FK check through
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
