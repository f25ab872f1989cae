-- 0008_engine: what the engine needs beyond pg_durable's tables.
--
--   df.scopes          one row per live scope (the instance root, a JOIN/RACE branch, a non-root loop):
--                      its generation, its named results (result_name → result text, column order kept)
--                      and, once finished, its outcome
--   df.events          history: leases taken, failed attempts that will be retried, final failures
--   df._lock_and_load  a checkpoint's read: locks the instance row, returns the rows the graph needs
--   df._apply          a checkpoint's write: node, scope and instance changes in one call
--
-- Lock order: a checkpoint already holds its node row (the claim) and then locks the instance row here.
-- Nothing that holds an instance row waits for a node row.

CREATE TABLE df.scopes (
    instance_id  varchar(8) NOT NULL,
    scope_id     text       NOT NULL,
    parent_scope text,
    root_node    varchar(8) NOT NULL,
    generation   integer    NOT NULL DEFAULT 1,
    named        jsonb      NOT NULL DEFAULT '{}'::jsonb,
    status       text       NOT NULL DEFAULT 'running',
    result       text,
    submitted_by regrole    NOT NULL,
    CONSTRAINT scopes_pkey PRIMARY KEY (instance_id, scope_id),
    CONSTRAINT scopes_status_check CHECK (status IN ('running', 'completed', 'failed', 'broke', 'cancelled')),
    CONSTRAINT scopes_instance_fkey FOREIGN KEY (instance_id, submitted_by)
        REFERENCES df.instances (id, submitted_by) ON DELETE CASCADE
);

CREATE TABLE df.events (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    instance_id  varchar(8)  NOT NULL,
    node_id      varchar(8),
    kind         text        NOT NULL,
    attempt      integer,
    detail       text,
    submitted_by regrole     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_instance_fkey FOREIGN KEY (instance_id, submitted_by)
        REFERENCES df.instances (id, submitted_by) ON DELETE CASCADE
);
CREATE INDEX events_instance_idx ON df.events (instance_id, id);

ALTER TABLE df.scopes ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY scopes_owner ON df.scopes FOR ALL
    USING (submitted_by = quote_ident(current_user)::regrole)
    WITH CHECK (submitted_by = quote_ident(current_user)::regrole);
CREATE POLICY events_owner ON df.events FOR ALL
    USING (submitted_by = quote_ident(current_user)::regrole)
    WITH CHECK (submitted_by = quote_ident(current_user)::regrole);

-- The claim: lock the most overdue ready row (or the one a queue message names) with SKIP LOCKED through
-- the partial index nodes_ready_idx, and return it with what running it needs. A plpgsql function so the
-- plans are cached per session (planning the joined query each time cost three times its execution).
CREATE FUNCTION df._claim(p_now timestamptz, p_instance_id varchar DEFAULT NULL, p_node_id varchar DEFAULT NULL)
RETURNS TABLE (
    instance_id varchar, id varchar, node_type text, query text, result_name text, status text, stamp text,
    state jsonb, attempts integer, run_at timestamptz, options jsonb, instance_status text, root_node varchar,
    label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean,
    superuser_gate text, named jsonb, scope_status text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v df.nodes%ROWTYPE;
    v_scope text;
BEGIN
    IF p_instance_id IS NULL THEN
        SELECT * INTO v FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
    ELSE
        SELECT * INTO v FROM df.nodes n
         WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
           FOR UPDATE SKIP LOCKED;
    END IF;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The scope a stamp belongs to: everything before its last '::'.
    v_scope := substring(v.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$');
    RETURN QUERY
    SELECT v.instance_id, v.id, v.node_type, v.query, v.result_name, v.status, v.status_details ->> 'execution_id',
           v.state, v.attempts, v.run_at, v.options, i.status, i.root_node, i.label, i.vars, i.generation,
           i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
           df._setting('enable_superuser_instances', 'off'), s.named, s.status
      FROM df.instances i
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
      LEFT JOIN df.scopes s ON s.instance_id = v.instance_id AND s.scope_id = v_scope
     WHERE i.id = v.instance_id;
END
$$;

-- Locks the instance row, then returns {instance, nodes, scopes} for the ids asked for, as one JSON
-- document so a checkpoint reads everything in one round trip.
CREATE FUNCTION df._lock_and_load(p_instance_id varchar, p_node_ids varchar[], p_scope_ids text[]) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_instance jsonb;
    v_nodes jsonb := '[]'::jsonb;
    v_node jsonb;
    v_id varchar;
BEGIN
    SELECT jsonb_build_object('status', i.status, 'generation', i.generation)
      INTO v_instance
      FROM df.instances i WHERE i.id = p_instance_id
       FOR NO KEY UPDATE;  -- serializes checkpoints, yet lets df.signal's FK check (KEY SHARE) through
    -- One primary-key lookup per id. A set-based form (id = ANY(...), or a join) let the cached generic
    -- plan scan every node of the instance: a new instance's size is never in the statistics.
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
            SELECT jsonb_agg(jsonb_build_object('id', s.scope_id, 'parent', s.parent_scope, 'root', s.root_node,
                       'generation', s.generation, 'named', s.named, 'status', s.status, 'result', s.result))
              FROM df.scopes s WHERE s.instance_id = p_instance_id AND s.scope_id = ANY (p_scope_ids)), '[]'::jsonb));
END
$$;

-- Applies a checkpoint's changes. p_changes = {
--   nodes:   [{id, status?, result?, stamp?, run_at?, state?, locked_until?, signal_floor?}]  (present keys are written;
--            result is the JSON text to store, or null for SQL NULL)
--   scopes:  [{id, parent, root, generation, named, status, result}]   (whole rows, upserted)
--   scope_deletes: [scope ids], cancel_scopes: [scope ids whose queued rows are withdrawn],
--   instance: {status?, output?, generation?}, events: [{node_id, kind, attempt, detail}] }
CREATE FUNCTION df._apply(p_instance_id varchar, p_changes jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner regrole;
    v_change jsonb;
BEGIN
    SELECT i.submitted_by INTO v_owner FROM df.instances i WHERE i.id = p_instance_id;

    -- One indexed UPDATE per changed node: set-based forms (a join, id = ANY) let the cached generic plan
    -- read every row of the instance, since statistics never know a new instance's size.
    FOR v_change IN SELECT x FROM jsonb_array_elements(coalesce(p_changes -> 'nodes', '[]'::jsonb)) x LOOP
        -- We hold the instance row; waiting here for a node row another worker holds (a RACE loser still
        -- running when a loop re-activates it) would deadlock with that worker's checkpoint. NOWAIT fails
        -- instead (55P03); the engine rolls back and retries later. Only leaves and loops are ever
        -- claimed, so the engine marks the other rows "nowait": false.
        IF coalesce((v_change ->> 'nowait')::boolean, true) THEN
            PERFORM 1 FROM df.nodes n
             WHERE n.instance_id = p_instance_id AND n.id = (v_change ->> 'id')::varchar
               FOR UPDATE NOWAIT;
        END IF;
        UPDATE df.nodes n SET
            status = CASE WHEN v_change ? 'status' THEN v_change ->> 'status' ELSE n.status END,
            result = CASE WHEN v_change ? 'result' THEN (v_change ->> 'result')::jsonb ELSE n.result END,
            status_details = CASE WHEN v_change ? 'stamp' THEN jsonb_build_object('execution_id', v_change ->> 'stamp') ELSE n.status_details END,
            run_at = CASE WHEN v_change ? 'run_at' THEN (v_change ->> 'run_at')::timestamptz ELSE n.run_at END,
            locked_until = CASE WHEN v_change ? 'locked_until' THEN (v_change ->> 'locked_until')::timestamptz ELSE n.locked_until END,
            attempts = CASE WHEN v_change ? 'attempts' THEN (v_change ->> 'attempts')::integer ELSE n.attempts END,
            state = CASE WHEN coalesce((v_change ->> 'signal_floor')::boolean, false)
                         THEN coalesce(v_change -> 'state', '{}'::jsonb) || jsonb_build_object('after_signal_id',
                              (SELECT coalesce(max(s.id), 0) FROM df.signals s WHERE s.instance_id = p_instance_id))
                         WHEN v_change ? 'state' THEN v_change -> 'state' ELSE n.state END,
            updated_at = now()
         WHERE n.instance_id = p_instance_id AND n.id = (v_change ->> 'id')::varchar;
    END LOOP;

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

-- History of an instance (claims of leases, failed attempts, retries, final failures), oldest first.
-- RLS applies: a role sees only its own instances' events.
CREATE FUNCTION df.instance_events(instance_id text)
RETURNS TABLE (event_id bigint, node_id text, kind text, attempt integer, detail text, created_at timestamptz)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.id, e.node_id::text, e.kind, e.attempt, e.detail, e.created_at
      FROM df.events e WHERE e.instance_id = instance_events.instance_id
     ORDER BY e.id
$$;
GRANT EXECUTE ON FUNCTION df.instance_events(text) TO PUBLIC;

-- df.nodes is a work queue: every step updates two or three rows, and each update leaves a dead entry in
-- nodes_ready_idx. Vacuum it after a fixed number of changes rather than a fraction of the table, and
-- without cost-based sleeps, so claims don't wade through dead entries (bench/ W2 over time).
ALTER TABLE df.nodes SET (
    -- Room on each page, so the many updates that leave run_at alone are HOT (no index entries).
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE df.scopes SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0);
