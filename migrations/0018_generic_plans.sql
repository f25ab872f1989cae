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
ALTER FUNCTION df._claim(timestamptz, varchar, varchar) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION df._lock_and_load(varchar, varchar[], text[]) SET plan_cache_mode = force_generic_plan;

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
BEGIN
    -- Each changed row's ctid, by one primary-key probe per change (a correlated subquery: no join for
    -- the planner to get wrong); then the rows are locked and written by ctid (TID scans).
    -- Each changed row's ctid and change, by one primary-key probe per change (LATERAL: a nested loop
    -- over both key columns is the only plan, generic or not); then locked and written by ctid.
    SELECT array_agg(n.ctid), array_agg(x.c), array_agg(n.ctid) FILTER (WHERE x.nowait)
      INTO v_tids, v_cs, v_lock
      FROM df._node_changes(p_changes) x,
           LATERAL (SELECT q.ctid FROM df.nodes q WHERE q.instance_id = p_instance_id AND q.id = x.id) n;
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
-- _lock_and_load, so from here on nobody else can change them.
CREATE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb, p_expect jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v jsonb;
BEGIN
    v := df._lock_and_load(p_instance_id,
                           ARRAY(SELECT jsonb_object_keys(p_expect -> 'nodes'))::varchar[],
                           ARRAY(SELECT jsonb_object_keys(p_expect -> 'scopes')));
    IF v -> 'instance' IS DISTINCT FROM p_expect -> 'instance'
       OR (SELECT coalesce(jsonb_object_agg(e ->> 'id', e), '{}'::jsonb) FROM jsonb_array_elements(v -> 'nodes') e)
          IS DISTINCT FROM p_expect -> 'nodes'
       OR (SELECT coalesce(jsonb_object_agg(e ->> 'id', e), '{}'::jsonb) FROM jsonb_array_elements(v -> 'scopes') e)
          IS DISTINCT FROM (SELECT coalesce(jsonb_object_agg(k, e), '{}'::jsonb)
                              FROM jsonb_each(p_expect -> 'scopes') AS t(k, e) WHERE e <> 'null'::jsonb) THEN
        RAISE EXCEPTION 'pgflare: checkpoint of instance % computed from a stale copy', p_instance_id
            USING ERRCODE = 'PFS01';  -- internal: the engine catches it and reads afresh
    END IF;
    PERFORM df._apply(p_instance_id, p_changes);
END
$$;
