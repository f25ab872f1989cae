-- 0016_speed: a cheaper checkpoint write (bench/ W1, W2; docs/ARCHITECTURE.md "Measured").
--
-- df._apply wrote each changed node with its own UPDATE. Every UPDATE statement on df.nodes pays a
-- fixed price far above its one-row work (executor start-up with the table's six CHECK constraints,
-- its triggers and indexes; ~0.8 ms under load against ~0.1 ms for the row), and a step of a
-- `~>` chain changes four rows on average (the leaf, the THEN rows it closes and opens, the next leaf).
-- Now one UPDATE writes them all, and one SELECT … FOR UPDATE NOWAIT probes the claimable ones.
--
-- The plan must stay "one primary-key probe per changed row": the generic plan of a join between the
-- changes and df.nodes scans the instance's rows instead whenever statistics think instances are
-- small, since they never know a new instance's size (0008; measured: 4–11 ms per step on a fresh
-- table). So the rows are found by a correlated subquery per change (an index probe on both key
-- columns is its only plan), and locked and written by ctid.

CREATE FUNCTION df._node_changes(p_changes jsonb)
RETURNS TABLE (id varchar, nowait boolean, c jsonb)
LANGUAGE sql IMMUTABLE STRICT ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (e ->> 'id')::varchar, coalesce((e ->> 'nowait')::boolean, true), e
      FROM jsonb_array_elements(coalesce(p_changes -> 'nodes', '[]'::jsonb)) e
$$;

-- Same contract as 0008's df._apply (p_changes documented there).
-- enable_seqscan off: the TID scans below must not turn into a scan of df.nodes when the (cached,
-- generic) plan was made while the table looked small; every other statement here has an index.
CREATE OR REPLACE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    v_owner regrole;
    v_tids tid[];
    v_lock tid[];
BEGIN
    -- Each changed row's ctid, by one primary-key probe per change (a correlated subquery: no join for
    -- the planner to get wrong); then the rows are locked and written by ctid (TID scans).
    SELECT array_agg(t.tid), array_agg(t.tid) FILTER (WHERE t.nowait)
      INTO v_tids, v_lock
      FROM (SELECT x.nowait, (SELECT n.ctid FROM df.nodes n WHERE n.instance_id = p_instance_id AND n.id = x.id) AS tid
              FROM df._node_changes(p_changes) x
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
        -- No instance_id condition here: it would offer the planner the instance's index range again.
        -- The ctids came from this instance's rows, and a row updated since is followed to its new version.
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
          FROM df._node_changes(p_changes) x
         WHERE n.ctid = ANY (v_tids) AND n.id = x.id;
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

