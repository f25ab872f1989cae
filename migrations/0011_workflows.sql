-- 0011_workflows: named workflows (definitions stored by name, with versions) and their input.
--
--   df.workflows                      one row per (name, version); the graph is the validated envelope
--   df.define_workflow(name, fut, …)  stores the next version, validated exactly like df.start
--   df.start_workflow(name, input, …) starts the latest (or a given) version as current_user
--   df.drop_workflow(name)            removes every version; running instances keep their own copy
--   df.instances.input                the start input ({} when none), read by every step as the named result `input`
--
-- A name belongs to the role that first defined it: other roles cannot see it (RLS) and cannot
-- define a version of it (the primary key sees across RLS; we turn that conflict into 42501).
-- An instance copies the graph into df.nodes at start, so a new version or a drop never changes it.

ALTER TABLE df.instances ADD COLUMN input jsonb;

CREATE TABLE df.workflows (
    name        text        NOT NULL,
    version     integer     NOT NULL,
    owner       regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole,
    graph       text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflows_pkey PRIMARY KEY (name, version),
    CONSTRAINT workflows_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    CONSTRAINT workflows_version_check CHECK (version >= 1)
);
ALTER TABLE df.workflows ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflows_owner ON df.workflows FOR ALL
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole);

-- The claim also returns the instance's input (as text: jsonb's own key order, numbers untouched), so a
-- step can read `$input` (src/engine/engine.ts).
DROP FUNCTION df._claim(timestamptz, varchar, varchar);
CREATE FUNCTION df._claim(p_now timestamptz, p_instance_id varchar DEFAULT NULL, p_node_id varchar DEFAULT NULL)
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
           df._setting('enable_superuser_instances', 'off'), s.named, s.status, i.input::text
      FROM df.instances i
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
      LEFT JOIN df.scopes s ON s.instance_id = v.instance_id AND s.scope_id = v_scope
     WHERE i.id = v.instance_id;
END
$$;

CREATE FUNCTION df.define_workflow(name text, fut text, description text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_envelope text;
    v_version  integer;
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' THEN
        RAISE EXCEPTION 'df.define_workflow(): invalid workflow name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'A name is 1-128 characters: letters, digits, and _ . : - (not first).';
    END IF;
    IF fut IS NULL THEN
        RAISE EXCEPTION 'df.define_workflow(): fut must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- Validate exactly as df.start does; nothing is stored unless the whole graph is valid.
    v_envelope := df._ensure(fut, true);
    PERFORM count(*) FROM df._flatten(v_envelope);

    -- Serialize definitions of one name so two callers can't pick the same version.
    PERFORM pg_advisory_xact_lock(hashtextextended('df.workflow:' || name, 0));
    SELECT coalesce(max(w.version), 0) + 1 INTO v_version FROM df.workflows w WHERE w.name = define_workflow.name;
    BEGIN
        INSERT INTO df.workflows (name, version, graph, description)
        VALUES (define_workflow.name, v_version, v_envelope, define_workflow.description);
    EXCEPTION WHEN unique_violation THEN
        -- Invisible under RLS but present: another role owns the name.
        RAISE EXCEPTION 'workflow "%" belongs to another role', name
            USING ERRCODE = '42501', HINT = 'Pick another name.';
    END;
    RETURN v_version;
END
$$;

CREATE FUNCTION df.start_workflow(name text, input jsonb DEFAULT NULL, label text DEFAULT NULL,
                                  version integer DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_graph text;
    v_id    text;
BEGIN
    SELECT w.graph INTO v_graph FROM df.workflows w
     WHERE w.name = start_workflow.name AND (start_workflow.version IS NULL OR w.version = start_workflow.version)
     ORDER BY w.version DESC LIMIT 1;
    IF NOT FOUND THEN
        IF version IS NULL THEN
            RAISE EXCEPTION 'workflow "%" does not exist', name USING ERRCODE = 'P0002',
                HINT = 'Define it with df.define_workflow(name, fut).';
        END IF;
        RAISE EXCEPTION 'workflow "%" has no version %', name, version USING ERRCODE = 'P0002';
    END IF;
    v_id := df.start(v_graph, coalesce(start_workflow.label, start_workflow.name));
    -- Always set, so `$input` means the start input in every instance of a named workflow ({} if none).
    UPDATE df.instances i SET input = coalesce(start_workflow.input, '{}'::jsonb) WHERE i.id = v_id;
    RETURN v_id;
END
$$;

CREATE FUNCTION df.drop_workflow(name text) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    DELETE FROM df.workflows w WHERE w.name = drop_workflow.name;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count = 0 THEN
        RAISE EXCEPTION 'workflow "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    RETURN v_count;
END
$$;

GRANT EXECUTE ON FUNCTION df.define_workflow(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.start_workflow(text, jsonb, text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.drop_workflow(text) TO PUBLIC;

-- Roles set up by df.grant_usage: the workflow table (RLS keeps each role to its own names) and the
-- input column of df.instances.
CREATE OR REPLACE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
    v_fn regprocedure;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA df TO %I%s', p_role, v_opt);
    FOR v_fn IN SELECT * FROM df._usage_functions(include_http, with_grant) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I%s', v_fn, p_role, v_opt);
    END LOOP;
    EXECUTE format('GRANT SELECT, UPDATE (status, updated_at, input), INSERT (id, label, root_node, submitted_by, database, vars, input) ON df.instances TO %I%s', p_role, v_opt);
    -- UPDATE (run_at): df.cancel withdraws queued work, df.signal wakes a waiting node. The engine runs
    -- only leaves it activated itself (status running, a live scope), so a hand-set run_at does nothing.
    EXECUTE format('GRANT SELECT, INSERT (id, instance_id, node_type, query, result_name, left_node, right_node, submitted_by, database, run_at, options), UPDATE (run_at) ON df.nodes TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (instance_id, signal_name, payload, submitted_by) ON df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.scopes, df.events TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (name, version, graph, description), DELETE ON df.workflows TO %I%s', p_role, v_opt);
    RAISE NOTICE 'pg_durable: granted df usage privileges to "%"', p_role;
END
$$;

CREATE OR REPLACE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN SELECT * FROM df._usage_functions(true, true) LOOP
        BEGIN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I CASCADE', v_fn, p_role);
        EXCEPTION WHEN insufficient_privilege THEN
            NULL; -- the sensitive functions may never have been granted by this role
        END;
    END LOOP;
    EXECUTE format('REVOKE ALL ON df.instances, df.nodes, df.vars, df.signals, df.scopes, df.events, df.workflows FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA df FROM %I CASCADE', p_role);
    RAISE NOTICE 'pg_durable: revoked df usage privileges granted by "%" from "%"', current_user, p_role;
END
$$;
