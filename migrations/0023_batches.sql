-- 0023_batches: a worker may run several one-step instances in one transaction (a batch).
--
-- A one-step instance (its root is a SQL leaf) is activated, run and completed by one checkpoint, and the
-- engine computes that checkpoint from the claimed row alone. Run one per transaction, each costs a claim,
-- a df._apply call and a COMMIT of its own: about 0.8 ms of server CPU (bench/profile.ts --statements),
-- against graphile-worker's 0.58 ms for a whole job, Node included (bench W2). df._claim_many claims up to
-- p_limit ready rows in one statement and df._apply_many writes the checkpoints of a whole batch in a few
-- set-based statements. The engine decides what joins a batch (src/engine/batch.ts); everything else runs
-- one row per transaction as before.
--
-- Error codes: PFS01 (internal: a checkpoint's copy is stale), 55P03 (a node row is held or moved), PFB01
-- (internal: a change df._apply_many does not take). The engine rolls the whole batch back on any of them
-- and runs its rows again one per transaction.

-- Up to p_limit ready rows, oldest first, with the same columns as df._claim. With role limits in place
-- it is df._claim itself (one row), whose rounds exclude full roles.
CREATE FUNCTION df._claim_many(p_now timestamptz, p_limit integer)
RETURNS TABLE (
    instance_id varchar, id varchar, node_type text, query text, result_name text, status text, stamp text,
    state jsonb, attempts integer, run_at timestamptz, options jsonb, instance_status text, root_node varchar,
    label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean,
    superuser_gate text, named jsonb, scope_status text, input text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    IF EXISTS (SELECT 1 FROM df.role_limits) OR p_limit <= 1 THEN
        RETURN QUERY SELECT * FROM df._claim(p_now);
        RETURN;
    END IF;
    RETURN QUERY
    WITH c AS (SELECT * FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
           c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
           i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
           coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
           s.named, s.status, i.input::text
      FROM c
      -- Probes by primary key, as in df._claim (0022).
      JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = c.instance_id OFFSET 0) i ON true
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
      LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                          WHERE x.instance_id = c.instance_id
                            AND x.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                         OFFSET 0) s ON true
     ORDER BY c.run_at, c.instance_id, c.id;
END
$$;

-- p_items: [{"id": instance id, "changes": as for df._apply, "expect": as for df._apply or absent}, …].
-- The same writes as one df._apply per item, with every item's stale-copy check made before anything is
-- written: one item failing its check fails the batch (PFS01). Scope deletes and cancelled scopes come
-- only from composite nodes, which never join a batch: they are refused (PFB01).
CREATE FUNCTION df._apply_many(p_items jsonb) RETURNS void
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
    v_lock tid[];
    v_written integer;
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_items) t
                WHERE jsonb_array_length(coalesce(t -> 'changes' -> 'scope_deletes', '[]'::jsonb)) > 0
                   OR jsonb_array_length(coalesce(t -> 'changes' -> 'cancel_scopes', '[]'::jsonb)) > 0) THEN
        RAISE EXCEPTION 'pgflare: df._apply_many takes no scope deletes or cancelled scopes' USING ERRCODE = 'PFB01';
    END IF;

    -- ===== Lock the instances, in id order: two batches never wait for each other in a cycle =====
    SELECT array_agg(t.id ORDER BY t.id) INTO v_ids
      FROM (SELECT DISTINCT (t ->> 'id')::varchar AS id FROM jsonb_array_elements(p_items) t) t;
    -- Correlated probes in id order, each row locked as it is read (LockRows above the ordered scan).
    SELECT array_agg(l.tid ORDER BY l.ord) INTO v_itids
      FROM (SELECT u.ord, (SELECT i.ctid FROM df.instances i WHERE i.id = u.id FOR NO KEY UPDATE) AS tid
              FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
             ORDER BY u.ord
            OFFSET 0) l;

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
    SELECT array_agg(u.tid), array_agg(u.c), array_agg(u.iid),
           array_agg(u.tid) FILTER (WHERE coalesce((u.c ->> 'nowait')::boolean, true))
      INTO v_tids, v_cs, v_iids, v_lock
      FROM (SELECT (t ->> 'id')::varchar AS iid, x.c,
                   (SELECT q.ctid FROM df.nodes q WHERE q.instance_id = (t ->> 'id')::varchar AND q.id = (x.c ->> 'id')::varchar) AS tid
              FROM jsonb_array_elements(p_items) t,
                   jsonb_array_elements(coalesce(t -> 'changes' -> 'nodes', '[]'::jsonb)) AS x(c)
            OFFSET 0) u
     WHERE u.tid IS NOT NULL;
    IF v_lock IS NOT NULL THEN
        PERFORM 1 FROM df.nodes n WHERE n.ctid = ANY (v_lock) FOR UPDATE NOWAIT;  -- as in df._apply
    END IF;
    IF v_tids IS NOT NULL THEN
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

-- Engine internals: df.grant_usage never grants them (as 0017's list, plus this migration's two).
CREATE OR REPLACE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean) RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f FROM df._usage_functions_base(p_include_http, p_with_grant) f
      JOIN pg_proc p ON p.oid = f
     WHERE p.proname !~ '^_run_[0-9]+$'
       AND p.proname NOT IN ('_usage_functions_base', '_run_step', '_runner_problem', '_install_runner',
                             -- engine internals added later (0016, 0017, 0023): only the worker runs them
                             '_node_changes', '_role_in_flight', '_take_slot', '_claim_many', '_apply_many',
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
