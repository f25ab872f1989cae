-- pgflare schema map (schema df; the migrator creates the schema and df._migrations / df._config first)
--
--   df.instances      one row per workflow instance (pg_durable's columns, then pgflare's)
--   df.nodes          one row per graph node; also the work queue: a node with run_at set is a
--                     ready leaf (or a composite node waiting to be activated) that a worker may claim
--   df.vars           per-role variables captured by df.start (§4.4)
--   df.signals        signals sent with df.signal, kept until the engine delivers or drops them
--   df._worker_epoch  worker liveness (heartbeat)
--
-- Every function pins search_path and qualifies what it calls. Internals are `_`-prefixed and not
-- executable by PUBLIC.

-- USAGE on schema df is the gate for ordinary API functions (SPEC §6.2); it is granted per role.
-- The migrator revokes PUBLIC EXECUTE from every `_`-prefixed function after each migration.
REVOKE ALL ON SCHEMA df FROM PUBLIC;

CREATE TABLE df.instances (
    id           varchar(8)  NOT NULL,
    label        text,
    root_node    varchar(8)  NOT NULL,
    status       text        NOT NULL DEFAULT 'pending',
    submitted_by regrole     NOT NULL,
    database     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    -- pgflare: df.vars captured at df.start (§4.1), the current root generation (loop iterations,
    -- reported as execution_count) and the final output text (result in compact form, or the error).
    vars         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    generation   integer     NOT NULL DEFAULT 1,
    output       text,
    CONSTRAINT instances_pkey PRIMARY KEY (id),
    CONSTRAINT instances_identity_key UNIQUE (id, submitted_by)
);
ALTER TABLE df.instances
    ADD CONSTRAINT instances_id_check CHECK (id ~ '^[0-9a-f]{8}$') NOT VALID,
    ADD CONSTRAINT instances_status_check
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')) NOT VALID;
CREATE INDEX instances_status_created_idx ON df.instances (status, created_at DESC, id);
CREATE INDEX instances_created_idx ON df.instances (created_at DESC, id);
CREATE INDEX instances_label_created_idx ON df.instances (label, created_at DESC, id) WHERE label IS NOT NULL;

CREATE TABLE df.nodes (
    id             varchar(8)  NOT NULL,
    instance_id    varchar(8)  NOT NULL,
    node_type      text        NOT NULL,
    query          text,
    result_name    text,
    left_node      varchar(8),
    right_node     varchar(8),
    status         text        NOT NULL DEFAULT 'pending',
    result         jsonb,
    error          text,
    submitted_by   regrole,
    database       text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    status_details jsonb,
    -- pgflare work-queue columns: run_at set = claimable from that time on; locked_until = lease of a
    -- step that cannot run inside the checkpoint transaction (HTTP, VACUUM, …); attempts = tries so far.
    run_at         timestamptz,
    locked_until   timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    -- engine bookkeeping of the current activation (loop iteration start, join progress, signal floor, …)
    state          jsonb,
    -- pgflare per-node options from the envelope's "pgflare" key: retry policy, timeout
    options        jsonb,
    CONSTRAINT nodes_pkey PRIMARY KEY (instance_id, id)
);
ALTER TABLE df.nodes
    ADD CONSTRAINT nodes_id_check CHECK (id ~ '^[0-9a-f]{8}$') NOT VALID,
    ADD CONSTRAINT nodes_node_type_check CHECK (node_type IN (
        'SQL', 'THEN', 'IF', 'JOIN', 'LOOP', 'BREAK', 'RACE', 'SLEEP', 'WAIT_SCHEDULE',
        'HTTP', 'HTTP_MULTIPART', 'SIGNAL')) NOT VALID,
    ADD CONSTRAINT nodes_result_name_check CHECK (result_name ~ '^[A-Za-z_][A-Za-z0-9_]*$') NOT VALID,
    ADD CONSTRAINT nodes_status_check CHECK (status IN ('pending', 'running', 'completed', 'failed')) NOT VALID,
    ADD CONSTRAINT nodes_result_check CHECK (result IS NULL OR status IN ('completed', 'failed')) NOT VALID,
    ADD CONSTRAINT nodes_structure_check CHECK (CASE
        WHEN node_type IN ('SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL')
            THEN left_node IS NULL AND right_node IS NULL AND query IS NOT NULL
        WHEN node_type = 'THEN' THEN left_node IS NOT NULL AND right_node IS NOT NULL AND query IS NULL
        WHEN node_type = 'IF' THEN left_node IS NOT NULL AND right_node IS NOT NULL AND query IS NOT NULL
        WHEN node_type = 'LOOP' THEN left_node IS NOT NULL AND right_node IS NULL
        WHEN node_type = 'JOIN' THEN left_node IS NOT NULL AND right_node IS NOT NULL
        WHEN node_type = 'RACE' THEN left_node IS NOT NULL AND right_node IS NOT NULL AND query IS NULL
        ELSE false END) NOT VALID,
    ADD CONSTRAINT nodes_instance_id_submitted_by_fkey FOREIGN KEY (instance_id, submitted_by)
        REFERENCES df.instances (id, submitted_by) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID,
    ADD CONSTRAINT nodes_left_node_same_instance_fkey FOREIGN KEY (instance_id, left_node)
        REFERENCES df.nodes (instance_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID,
    ADD CONSTRAINT nodes_right_node_same_instance_fkey FOREIGN KEY (instance_id, right_node)
        REFERENCES df.nodes (instance_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID;
ALTER TABLE df.instances
    ADD CONSTRAINT instances_root_node_same_instance_fkey FOREIGN KEY (id, root_node)
        REFERENCES df.nodes (instance_id, id) DEFERRABLE INITIALLY DEFERRED NOT VALID;
-- The claim path: only rows with run_at set are in this index, ordered by when they are due.
CREATE INDEX nodes_ready_idx ON df.nodes (run_at) WHERE run_at IS NOT NULL;

CREATE TABLE df.vars (
    name  text    NOT NULL,
    value text,
    owner regrole NOT NULL DEFAULT quote_ident(current_user)::regrole,
    CONSTRAINT vars_pkey PRIMARY KEY (owner, name)
);

CREATE TABLE df.signals (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    instance_id  varchar(8)  NOT NULL,
    signal_name  text        NOT NULL,
    payload      jsonb,
    submitted_by regrole     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT signals_pkey PRIMARY KEY (id),
    CONSTRAINT signals_instance_fkey FOREIGN KEY (instance_id, submitted_by)
        REFERENCES df.instances (id, submitted_by) ON DELETE CASCADE
);
CREATE INDEX signals_instance_idx ON df.signals (instance_id, signal_name, id);

CREATE TABLE df._worker_epoch (
    epoch_id     uuid        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT _worker_epoch_pkey PRIMARY KEY (epoch_id)
);
REVOKE ALL ON df._worker_epoch FROM PUBLIC;

-- Row-level security: a role sees and changes only its own rows; the table owner and superusers bypass.
ALTER TABLE df.instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.vars ENABLE ROW LEVEL SECURITY;
ALTER TABLE df.signals ENABLE ROW LEVEL SECURITY;
CREATE POLICY instances_owner ON df.instances FOR ALL
    USING (submitted_by = quote_ident(current_user)::regrole)
    WITH CHECK (submitted_by = quote_ident(current_user)::regrole);
CREATE POLICY nodes_owner ON df.nodes FOR ALL
    USING (submitted_by = quote_ident(current_user)::regrole)
    WITH CHECK (submitted_by = quote_ident(current_user)::regrole);
CREATE POLICY vars_owner ON df.vars FOR ALL
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole);
CREATE POLICY signals_owner ON df.signals FOR ALL
    USING (submitted_by = quote_ident(current_user)::regrole)
    WITH CHECK (submitted_by = quote_ident(current_user)::regrole);

-- Settings (SPEC §9): pg_durable.<name> from the server (postgresql.conf, ALTER DATABASE/ROLE … SET),
-- with the documented default when unset, NULL or ''.
CREATE FUNCTION df._setting(p_name text, p_default text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pg_durable.' || p_name, true), ''), p_default)
$$;

-- True while a workflow step runs (the engine sets df.in_workflow for the step's transaction).
CREATE FUNCTION df._in_workflow() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(current_setting('df.in_workflow', true), '') = 'true'
$$;

-- 8 lowercase hex characters: the last 8 of a random UUIDv4.
CREATE FUNCTION df._new_id() RETURNS varchar(8)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT right(replace(gen_random_uuid()::text, '-', ''), 8)::varchar(8)
$$;
