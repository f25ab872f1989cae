-- 0016_speed: a cheaper checkpoint write (bench/ W1, W2; docs/ARCHITECTURE.md "Measured").
--
-- df._apply wrote each changed node with its own UPDATE. Every UPDATE statement on df.nodes pays a
-- fixed price far above its one-row work (executor start-up with the table's six CHECK constraints,
-- its triggers and indexes; ~0.8 ms under load against ~0.1 ms for the row), and a step of a
-- `~>` chain changes four rows on average (the leaf, the THEN rows it closes and opens, the next leaf).
-- Now one UPDATE writes them all, and one SELECT … FOR UPDATE NOWAIT probes the claimable ones.
--
-- The plan must stay "one primary-key probe per changed row": the generic plan of a set-based form
-- otherwise scans the instance's rows, since statistics never know a new instance's size (0008).
-- df._node_changes declares ROWS 1 and is not inlinable (it pins search_path), so the planner's
-- cheapest join is a nested loop with a (instance_id, id) index probe per change, whatever it
-- believes about the instance.

CREATE FUNCTION df._node_changes(p_changes jsonb)
RETURNS TABLE (id varchar, nowait boolean, c jsonb)
LANGUAGE sql IMMUTABLE STRICT ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (e ->> 'id')::varchar, coalesce((e ->> 'nowait')::boolean, true), e
      FROM jsonb_array_elements(coalesce(p_changes -> 'nodes', '[]'::jsonb)) e
$$;

-- Same contract as 0008's df._apply (p_changes documented there).
CREATE OR REPLACE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner regrole;
BEGIN
    IF jsonb_array_length(coalesce(p_changes -> 'nodes', '[]'::jsonb)) > 0 THEN
        -- We hold the instance row; waiting here for a node row another worker holds (a RACE loser still
        -- running when a loop re-activates it) would deadlock with that worker's checkpoint. NOWAIT fails
        -- instead (55P03); the engine rolls back and retries later. Only leaves and loops are ever
        -- claimed, so the engine marks the other rows "nowait": false.
        PERFORM 1 FROM df._node_changes(p_changes) x
          JOIN df.nodes n ON n.instance_id = p_instance_id AND n.id = x.id
         WHERE x.nowait
           FOR UPDATE OF n NOWAIT;
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
         WHERE n.instance_id = p_instance_id AND n.id = x.id;
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
