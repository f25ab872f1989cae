-- schema
schema df acl {<owner>=UC/<owner>}

-- tables and columns
table df._api_tokens 1:id bigint not null
table df._api_tokens 2:name text not null
table df._api_tokens 3:token_hash text not null
table df._api_tokens 4:role regrole not null default (quote_ident((CURRENT_USER)::text))::regrole
table df._api_tokens 5:created_at timestamp with time zone not null default now()
table df._api_tokens 6:revoked_at timestamp with time zone
table df._config 1:key text not null
table df._config 2:value text not null
table df._hooks 1:id bigint not null
table df._hooks 2:name text not null
table df._hooks 3:owner regrole not null default (quote_ident((CURRENT_USER)::text))::regrole
table df._hooks 4:workflow text not null
table df._hooks 5:scheme text not null
table df._hooks 6:secret text not null
table df._hooks 7:tolerance_seconds integer not null default 300
table df._hooks 8:max_body_bytes integer not null default 1048576
table df._hooks 9:created_at timestamp with time zone not null default now()
table df._hooks 10:secret_rotated_at timestamp with time zone
table df._idempotency_keys 1:role text not null
table df._idempotency_keys 2:key text not null
table df._idempotency_keys 3:request_hash text not null
table df._idempotency_keys 4:status integer not null
table df._idempotency_keys 5:response jsonb not null
table df._idempotency_keys 6:created_at timestamp with time zone not null default now()
table df._migrations 1:version integer not null
table df._migrations 2:name text not null
table df._migrations 3:checksum text not null
table df._migrations 4:applied_at timestamp with time zone not null default now()
table df._runners 1:role oid not null
table df._runners 2:runner text not null
table df._runners 3:created_by oid not null
table df._runners 4:created_at timestamp with time zone not null default now()
table df._worker_epoch 1:epoch_id uuid not null
table df._worker_epoch 2:started_at timestamp with time zone not null default now()
table df._worker_epoch 3:last_seen_at timestamp with time zone not null default now()
table df.events 1:id bigint not null
table df.events 2:instance_id character varying(8) not null
table df.events 3:node_id character varying(8)
table df.events 4:kind text not null
table df.events 5:attempt integer
table df.events 6:detail text
table df.events 7:submitted_by regrole not null
table df.events 8:created_at timestamp with time zone not null default now()
table df.hook_deliveries 1:hook_id bigint not null
table df.hook_deliveries 2:delivery_id text
table df.hook_deliveries 3:instance_id character varying(8) not null
table df.hook_deliveries 4:owner regrole not null default (quote_ident((CURRENT_USER)::text))::regrole
table df.hook_deliveries 5:received_at timestamp with time zone not null default now()
table df.instances 1:id character varying(8) not null
table df.instances 2:label text
table df.instances 3:root_node character varying(8) not null
table df.instances 4:status text not null default 'pending'::text
table df.instances 5:submitted_by regrole not null
table df.instances 6:database text
table df.instances 7:created_at timestamp with time zone not null default now()
table df.instances 8:updated_at timestamp with time zone not null default now()
table df.instances 9:completed_at timestamp with time zone
table df.instances 10:vars jsonb not null default '{}'::jsonb
table df.instances 11:generation integer not null default 1
table df.instances 12:output text
table df.instances 13:input jsonb
table df.instances 14:started_at timestamp with time zone
table df.instances 15:finished_at timestamp with time zone
table df.nodes 1:id character varying(8) not null
table df.nodes 2:instance_id character varying(8) not null
table df.nodes 3:node_type text not null
table df.nodes 4:query text
table df.nodes 5:result_name text
table df.nodes 6:left_node character varying(8)
table df.nodes 7:right_node character varying(8)
table df.nodes 8:status text not null default 'pending'::text
table df.nodes 9:result jsonb
table df.nodes 10:error text
table df.nodes 11:submitted_by regrole
table df.nodes 12:database text
table df.nodes 13:created_at timestamp with time zone not null default now()
table df.nodes 14:updated_at timestamp with time zone not null default now()
table df.nodes 15:status_details jsonb
table df.nodes 16:run_at timestamp with time zone
table df.nodes 17:locked_until timestamp with time zone
table df.nodes 18:attempts integer not null default 0
table df.nodes 19:state jsonb
table df.nodes 20:options jsonb
table df.role_limits 1:role regrole not null
table df.role_limits 2:max_concurrent_steps integer not null
table df.role_limits 3:updated_at timestamp with time zone not null default now()
table df.schedule_fires 1:schedule_id bigint not null
table df.schedule_fires 2:fire_at timestamp with time zone not null
table df.schedule_fires 3:owner regrole not null
table df.schedule_fires 4:outcome text not null
table df.schedule_fires 5:instance_id character varying
table df.schedule_fires 6:error text
table df.schedule_fires 7:fired_at timestamp with time zone not null default now()
table df.schedules 1:id bigint not null
table df.schedules 2:name text not null
table df.schedules 3:owner regrole not null default (quote_ident((CURRENT_USER)::text))::regrole
table df.schedules 4:workflow text not null
table df.schedules 5:cron text not null
table df.schedules 6:timezone text not null default 'UTC'::text
table df.schedules 7:input jsonb
table df.schedules 8:missed text not null default 'skip'::text
table df.schedules 9:overlap text not null default 'skip'::text
table df.schedules 10:paused boolean not null default false
table df.schedules 11:next_fire_at timestamp with time zone
table df.schedules 12:last_fire_at timestamp with time zone
table df.schedules 13:last_instance_id character varying
table df.schedules 14:last_error text
table df.schedules 15:last_error_at timestamp with time zone
table df.schedules 16:created_at timestamp with time zone not null default now()
table df.schedules 17:updated_at timestamp with time zone not null default now()
table df.scopes 1:instance_id character varying(8) not null
table df.scopes 2:scope_id text not null
table df.scopes 3:parent_scope text
table df.scopes 4:root_node character varying(8) not null
table df.scopes 5:generation integer not null default 1
table df.scopes 6:named jsonb not null default '{}'::jsonb
table df.scopes 7:status text not null default 'running'::text
table df.scopes 8:result text
table df.scopes 9:submitted_by regrole not null
table df.signals 1:id bigint not null
table df.signals 2:instance_id character varying(8) not null
table df.signals 3:signal_name text not null
table df.signals 4:payload jsonb
table df.signals 5:submitted_by regrole not null
table df.signals 6:created_at timestamp with time zone not null default now()
table df.vars 1:name text not null
table df.vars 2:value text
table df.vars 3:owner regrole not null default (quote_ident((CURRENT_USER)::text))::regrole
table df.workflows 1:name text not null
table df.workflows 2:version integer not null
table df.workflows 3:owner regrole not null default (quote_ident((CURRENT_USER)::text))::regrole
table df.workflows 4:graph text not null
table df.workflows 5:description text
table df.workflows 6:created_at timestamp with time zone not null default now()

-- table options and grants
table df._api_tokens rls=t force=f acl={<owner>=arwdDxt/<owner>} options={}
table df._config rls=f force=f acl={<owner>=arwdDxt/<owner>} options={}
table df._hooks rls=t force=f acl={<owner>=arwdDxt/<owner>} options={}
table df._idempotency_keys rls=t force=f acl={<owner>=arwdDxt/<owner>} options={}
table df._migrations rls=f force=f acl={<owner>=arwdDxt/<owner>} options={}
table df._runners rls=f force=f acl={<owner>=arwdDxt/<owner>} options={}
table df._worker_epoch rls=f force=f acl={<owner>=arwdDxt/<owner>} options={}
table df.events rls=t force=f acl=default options={}
table df.hook_deliveries rls=t force=f acl={<owner>=arwdDxt/<owner>} options={}
table df.instances rls=t force=f acl=default options={}
table df.nodes rls=t force=f acl=default options={fillfactor=70,autovacuum_vacuum_scale_factor=0,autovacuum_vacuum_threshold=2000,autovacuum_vacuum_insert_scale_factor=0.05,autovacuum_analyze_scale_factor=0.02,autovacuum_vacuum_cost_delay=0}
table df.role_limits rls=f force=f acl={<owner>=arwdDxt/<owner>} options={}
table df.schedule_fires rls=t force=f acl={<owner>=arwdDxt/<owner>} options={}
table df.schedules rls=t force=f acl={<owner>=arwdDxt/<owner>} options={}
table df.scopes rls=t force=f acl=default options={autovacuum_vacuum_scale_factor=0,autovacuum_vacuum_threshold=2000,autovacuum_vacuum_cost_delay=0}
table df.signals rls=t force=f acl=default options={}
table df.vars rls=t force=f acl=default options={}
table df.workflows rls=t force=f acl=default options={}

-- constraints
constraint _api_tokens_name_check on df._api_tokens: CHECK (((btrim(name) <> ''::text) AND (length(name) <= 200)))
constraint _api_tokens_pkey on df._api_tokens: PRIMARY KEY (id)
constraint _api_tokens_token_hash_check on df._api_tokens: CHECK ((token_hash ~ '^[0-9a-f]{64}$'::text))
constraint _api_tokens_token_hash_key on df._api_tokens: UNIQUE (token_hash)
constraint _config_pkey on df._config: PRIMARY KEY (key)
constraint _hooks_max_body_check on df._hooks: CHECK (((max_body_bytes >= 1) AND (max_body_bytes <= 16777216)))
constraint _hooks_name_check on df._hooks: CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'::text))
constraint _hooks_name_key on df._hooks: UNIQUE (name)
constraint _hooks_pkey on df._hooks: PRIMARY KEY (id)
constraint _hooks_scheme_check on df._hooks: CHECK ((scheme = ANY (ARRAY['github'::text, 'stripe'::text, 'hmac'::text])))
constraint _hooks_secret_check on df._hooks: CHECK (((length(secret) >= 16) AND (length(secret) <= 512)))
constraint _hooks_tolerance_check on df._hooks: CHECK (((tolerance_seconds >= 1) AND (tolerance_seconds <= 86400)))
constraint _idempotency_keys_key_check on df._idempotency_keys: CHECK (((length(key) >= 1) AND (length(key) <= 255)))
constraint _idempotency_keys_pkey on df._idempotency_keys: PRIMARY KEY (role, key)
constraint _idempotency_keys_request_hash_check on df._idempotency_keys: CHECK ((request_hash ~ '^[0-9a-f]{64}$'::text))
constraint _migrations_pkey on df._migrations: PRIMARY KEY (version)
constraint _runners_pkey on df._runners: PRIMARY KEY (role)
constraint _runners_runner_check on df._runners: CHECK ((runner ~ '^df\._run_[0-9]+$'::text))
constraint _worker_epoch_pkey on df._worker_epoch: PRIMARY KEY (epoch_id)
constraint events_instance_fkey on df.events: FOREIGN KEY (instance_id, submitted_by) REFERENCES df.instances(id, submitted_by) ON DELETE CASCADE
constraint events_pkey on df.events: PRIMARY KEY (id)
constraint hook_deliveries_delivery_id_check on df.hook_deliveries: CHECK (((length(delivery_id) >= 1) AND (length(delivery_id) <= 200)))
constraint hook_deliveries_hook_delivery_key on df.hook_deliveries: UNIQUE (hook_id, delivery_id)
constraint hook_deliveries_hook_fkey on df.hook_deliveries: FOREIGN KEY (hook_id) REFERENCES df._hooks(id) ON DELETE CASCADE
constraint hook_deliveries_instance_fkey on df.hook_deliveries: FOREIGN KEY (instance_id, owner) REFERENCES df.instances(id, submitted_by) ON DELETE CASCADE
constraint instances_id_check on df.instances: CHECK (((id)::text ~ '^[0-9a-f]{8}$'::text)) NOT VALID (not validated)
constraint instances_identity_key on df.instances: UNIQUE (id, submitted_by)
constraint instances_pkey on df.instances: PRIMARY KEY (id)
constraint instances_root_node_same_instance_fkey on df.instances: FOREIGN KEY (id, root_node) REFERENCES df.nodes(instance_id, id) DEFERRABLE INITIALLY DEFERRED NOT VALID (not validated)
constraint instances_status_check on df.instances: CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text]))) NOT VALID (not validated)
constraint nodes_id_check on df.nodes: CHECK (((id)::text ~ '^[0-9a-f]{8}$'::text)) NOT VALID (not validated)
constraint nodes_instance_id_submitted_by_fkey on df.nodes: FOREIGN KEY (instance_id, submitted_by) REFERENCES df.instances(id, submitted_by) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID (not validated)
constraint nodes_left_node_same_instance_fkey on df.nodes: FOREIGN KEY (instance_id, left_node) REFERENCES df.nodes(instance_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID (not validated)
constraint nodes_node_type_check on df.nodes: CHECK ((node_type = ANY (ARRAY['SQL'::text, 'THEN'::text, 'IF'::text, 'JOIN'::text, 'LOOP'::text, 'BREAK'::text, 'RACE'::text, 'SLEEP'::text, 'WAIT_SCHEDULE'::text, 'HTTP'::text, 'HTTP_MULTIPART'::text, 'SIGNAL'::text]))) NOT VALID (not validated)
constraint nodes_pkey on df.nodes: PRIMARY KEY (instance_id, id)
constraint nodes_result_check on df.nodes: CHECK (((result IS NULL) OR (status = ANY (ARRAY['completed'::text, 'failed'::text])))) NOT VALID (not validated)
constraint nodes_result_name_check on df.nodes: CHECK ((result_name ~ '^[A-Za-z_][A-Za-z0-9_]*$'::text)) NOT VALID (not validated)
constraint nodes_right_node_same_instance_fkey on df.nodes: FOREIGN KEY (instance_id, right_node) REFERENCES df.nodes(instance_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID (not validated)
constraint nodes_status_check on df.nodes: CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'completed'::text, 'failed'::text]))) NOT VALID (not validated)
constraint nodes_structure_check on df.nodes: CHECK (
CASE
    WHEN (node_type = ANY (ARRAY['SQL'::text, 'SLEEP'::text, 'WAIT_SCHEDULE'::text, 'BREAK'::text, 'HTTP'::text, 'HTTP_MULTIPART'::text, 'SIGNAL'::text])) THEN ((left_node IS NULL) AND (right_node IS NULL) AND (query IS NOT NULL))
    WHEN (node_type = 'THEN'::text) THEN ((left_node IS NOT NULL) AND (right_node IS NOT NULL) AND (query IS NULL))
    WHEN (node_type = 'IF'::text) THEN ((left_node IS NOT NULL) AND (right_node IS NOT NULL) AND (query IS NOT NULL))
    WHEN (node_type = 'LOOP'::text) THEN ((left_node IS NOT NULL) AND (right_node IS NULL))
    WHEN (node_type = 'JOIN'::text) THEN ((left_node IS NOT NULL) AND (right_node IS NOT NULL))
    WHEN (node_type = 'RACE'::text) THEN ((left_node IS NOT NULL) AND (right_node IS NOT NULL) AND (query IS NULL))
    ELSE false
END) NOT VALID (not validated)
constraint role_limits_max_check on df.role_limits: CHECK (((max_concurrent_steps >= 1) AND (max_concurrent_steps <= 1000)))
constraint role_limits_pkey on df.role_limits: PRIMARY KEY (role)
constraint schedule_fires_outcome_check on df.schedule_fires: CHECK ((outcome = ANY (ARRAY['started'::text, 'skipped_overlap'::text, 'missed'::text, 'failed'::text])))
constraint schedule_fires_pkey on df.schedule_fires: PRIMARY KEY (schedule_id, fire_at)
constraint schedule_fires_schedule_id_fkey on df.schedule_fires: FOREIGN KEY (schedule_id) REFERENCES df.schedules(id) ON DELETE CASCADE
constraint schedules_missed_check on df.schedules: CHECK ((missed = ANY (ARRAY['skip'::text, 'catch_up_once'::text])))
constraint schedules_name_check on df.schedules: CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'::text))
constraint schedules_overlap_check on df.schedules: CHECK ((overlap = ANY (ARRAY['skip'::text, 'allow'::text])))
constraint schedules_owner_name_key on df.schedules: UNIQUE (owner, name)
constraint schedules_pkey on df.schedules: PRIMARY KEY (id)
constraint scopes_instance_fkey on df.scopes: FOREIGN KEY (instance_id, submitted_by) REFERENCES df.instances(id, submitted_by) ON DELETE CASCADE
constraint scopes_pkey on df.scopes: PRIMARY KEY (instance_id, scope_id)
constraint scopes_status_check on df.scopes: CHECK ((status = ANY (ARRAY['running'::text, 'completed'::text, 'failed'::text, 'broke'::text, 'cancelled'::text])))
constraint signals_instance_fkey on df.signals: FOREIGN KEY (instance_id, submitted_by) REFERENCES df.instances(id, submitted_by) ON DELETE CASCADE
constraint signals_pkey on df.signals: PRIMARY KEY (id)
constraint vars_pkey on df.vars: PRIMARY KEY (owner, name)
constraint workflows_name_check on df.workflows: CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'::text))
constraint workflows_pkey on df.workflows: PRIMARY KEY (name, version)
constraint workflows_version_check on df.workflows: CHECK ((version >= 1))

-- indexes
CREATE UNIQUE INDEX _api_tokens_pkey ON df._api_tokens USING btree (id)
CREATE UNIQUE INDEX _api_tokens_role_name_key ON df._api_tokens USING btree (role, name) WHERE (revoked_at IS NULL)
CREATE UNIQUE INDEX _api_tokens_token_hash_key ON df._api_tokens USING btree (token_hash)
CREATE UNIQUE INDEX _config_pkey ON df._config USING btree (key)
CREATE UNIQUE INDEX _hooks_name_key ON df._hooks USING btree (name)
CREATE UNIQUE INDEX _hooks_pkey ON df._hooks USING btree (id)
CREATE INDEX _idempotency_keys_created_idx ON df._idempotency_keys USING btree (created_at)
CREATE UNIQUE INDEX _idempotency_keys_pkey ON df._idempotency_keys USING btree (role, key)
CREATE UNIQUE INDEX _migrations_pkey ON df._migrations USING btree (version)
CREATE UNIQUE INDEX _runners_pkey ON df._runners USING btree (role)
CREATE UNIQUE INDEX _worker_epoch_pkey ON df._worker_epoch USING btree (epoch_id)
CREATE INDEX events_instance_idx ON df.events USING btree (instance_id, id)
CREATE UNIQUE INDEX events_pkey ON df.events USING btree (id)
CREATE UNIQUE INDEX hook_deliveries_hook_delivery_key ON df.hook_deliveries USING btree (hook_id, delivery_id)
CREATE INDEX hook_deliveries_hook_received_idx ON df.hook_deliveries USING btree (hook_id, received_at DESC)
CREATE INDEX hook_deliveries_instance_idx ON df.hook_deliveries USING btree (instance_id)
CREATE INDEX instances_created_idx ON df.instances USING btree (created_at DESC, id)
CREATE INDEX instances_finished_idx ON df.instances USING btree (COALESCE(completed_at, created_at), id) WHERE (status = ANY (ARRAY['completed'::text, 'failed'::text, 'cancelled'::text]))
CREATE UNIQUE INDEX instances_identity_key ON df.instances USING btree (id, submitted_by)
CREATE INDEX instances_label_created_idx ON df.instances USING btree (label, created_at DESC, id) WHERE (label IS NOT NULL)
CREATE INDEX instances_label_status_created_idx ON df.instances USING btree (label, status, created_at DESC, id) WHERE (label IS NOT NULL)
CREATE UNIQUE INDEX instances_pkey ON df.instances USING btree (id)
CREATE INDEX instances_status_created_idx ON df.instances USING btree (status, created_at DESC, id)
CREATE INDEX nodes_leases_idx ON df.nodes USING btree (submitted_by, locked_until) WHERE ((locked_until IS NOT NULL) AND (run_at IS NOT NULL))
CREATE UNIQUE INDEX nodes_pkey ON df.nodes USING btree (instance_id, id)
CREATE INDEX nodes_ready_idx ON df.nodes USING btree (run_at) WHERE (run_at IS NOT NULL)
CREATE UNIQUE INDEX role_limits_pkey ON df.role_limits USING btree (role)
CREATE UNIQUE INDEX schedule_fires_pkey ON df.schedule_fires USING btree (schedule_id, fire_at)
CREATE INDEX schedules_due_idx ON df.schedules USING btree (next_fire_at) WHERE ((NOT paused) AND (next_fire_at IS NOT NULL))
CREATE UNIQUE INDEX schedules_owner_name_key ON df.schedules USING btree (owner, name)
CREATE UNIQUE INDEX schedules_pkey ON df.schedules USING btree (id)
CREATE UNIQUE INDEX scopes_pkey ON df.scopes USING btree (instance_id, scope_id)
CREATE INDEX signals_instance_idx ON df.signals USING btree (instance_id, signal_name, id)
CREATE UNIQUE INDEX signals_pkey ON df.signals USING btree (id)
CREATE UNIQUE INDEX vars_pkey ON df.vars USING btree (owner, name)
CREATE UNIQUE INDEX workflows_pkey ON df.workflows USING btree (name, version)

-- policies
policy _api_tokens_owner on df._api_tokens for ALL using (((role)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((role)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy _hooks_owner on df._hooks for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy _idempotency_keys_owner on df._idempotency_keys for ALL using ((role = (CURRENT_USER)::text)) with check ((role = (CURRENT_USER)::text))
policy events_owner on df.events for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy hook_deliveries_owner on df.hook_deliveries for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check ((((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid) AND (EXISTS ( SELECT 1
   FROM df._hooks h
  WHERE (h.id = hook_deliveries.hook_id)))))
policy instances_owner on df.instances for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy nodes_owner on df.nodes for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy schedule_fires_owner on df.schedule_fires for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy schedules_owner on df.schedules for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy scopes_owner on df.scopes for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy signals_owner on df.signals for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy vars_owner on df.vars for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy workflows_owner on df.workflows for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))

-- operators
operator public.!>(text, text) -> df.if_else_op
operator public.&(text, text) -> df."join"
operator public.?>(text, text) -> df.if_then_op
operator public.@>(none, text) -> df.loop_prefix_op
operator public.|(text, text) -> df.race
operator public.|=>(text, text) -> df.as_op
operator public.~>(text, text) -> df.seq

-- functions
-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._api_token_admin()
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false)
        OR pg_catalog.pg_has_role(current_user,
                                  (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'df._api_tokens'::regclass),
                                  'USAGE')
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._api_token_role(p_token_hash text)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT r.rolname::text
      FROM df._api_tokens AS t
      JOIN pg_catalog.pg_roles AS r ON r.oid = t.role
     WHERE t.token_hash = p_token_hash AND t.revoked_at IS NULL
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._api_token_target(p_role text)
 RETURNS regrole
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_role regrole;
BEGIN
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = '22004';
    END IF;
    v_role := to_regrole(quote_ident(p_role));
    IF v_role IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    IF v_role <> quote_ident(current_user)::regrole AND NOT df._api_token_admin() THEN
        RAISE EXCEPTION 'permission denied to manage API tokens of role "%"', p_role
            USING ERRCODE = '42501',
                  HINT = 'A role manages its own tokens; only the owner of schema df or a superuser manages tokens of other roles.';
    END IF;
    RETURN v_role;
END;
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Writes one checkpoint (the state machine's changes to nodes, scopes, instance and events) of one instance. It first locks the instance row (after the node row the worker claimed) as df._lock_and_load does (a row already held costs nothing), and with p_expect checks the worker's cached copy is still current (PFS01 if not, nothing written); every node row it writes is locked NOWAIT (55P03: the engine retries), never waited for. A JOIN branch's write (p_changes.share) locks the instance row FOR SHARE instead, adds to the JOIN's count in SQL, once per JOIN, the number of its changes with join_max (PFS01 when the write holds the last branch) and may change only its branch's rows.
CREATE OR REPLACE FUNCTION df._apply(p_instance_id character varying, p_changes jsonb, p_expect jsonb DEFAULT NULL::jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Writes the checkpoints of a batch of one-step instances in a few set-based statements: the instance rows first (after the claimed node rows; busy ones as in df._lock_and_load), every item's stale-copy check (PFS01 fails the batch), the node rows NOWAIT (55P03), then the writes; lock order as df._apply.
CREATE OR REPLACE FUNCTION df._apply_many(p_items jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Claims the oldest ready df.nodes row (or the given one) FOR UPDATE SKIP LOCKED and returns it with what running it needs from its instance, owner role and scope. Locks only the node row; with step limits in force (df.set_role_limit, pg_durable.max_user_connections) it takes a slot (df._take_slot), skips full roles, and fails a SQL step that waited past pg_durable.execution_acquire_timeout (df._fail_unslotted). Its RETURNS TABLE is the claim's column list: df._claim_many, the prepared wake-up claim and ClaimedRow (src/engine/queries/claim.ts) are tested against it.
CREATE OR REPLACE FUNCTION df._claim(p_now timestamp with time zone, p_instance_id character varying DEFAULT NULL::character varying, p_node_id character varying DEFAULT NULL::character varying)
 RETURNS TABLE(instance_id character varying, id character varying, node_type text, query text, result_name text, status text, stamp text, state jsonb, attempts integer, run_at timestamp with time zone, options jsonb, instance_status text, root_node character varying, label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean, superuser_gate text, named jsonb, scope_status text, input text)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v df.nodes%ROWTYPE;
    v_scope text;
    v_full oid[] := '{}';
    v_limit integer;
    v_timeout integer;
    v_found boolean := false;
BEGIN
    IF NOT df._limits_in_force() THEN
        -- No limits (the usual case): the claim and what comes with it are one statement.
        IF p_instance_id IS NULL THEN
            RETURN QUERY
            WITH c AS (SELECT * FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
                   c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
                   i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
                   coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
                   s.named, s.status, i.input::text
              FROM c
              -- Probes by primary key as correlated subqueries (OFFSET 0: never pulled up into a join).
              JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = c.instance_id OFFSET 0) i ON true
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
              LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                                  WHERE x.instance_id = c.instance_id
                                    AND x.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                                 OFFSET 0) s ON true;
        ELSE
            RETURN QUERY
            WITH c AS (SELECT * FROM df.nodes n
                        WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
                          FOR UPDATE SKIP LOCKED)
            SELECT c.instance_id, c.id, c.node_type, c.query, c.result_name, c.status, c.status_details ->> 'execution_id',
                   c.state, c.attempts, c.run_at, c.options, i.status, i.root_node, i.label, i.vars, i.generation,
                   i.submitted_by::text, r.oid IS NOT NULL, coalesce(r.rolsuper, false),
                   coalesce(nullif(current_setting('pg_durable.enable_superuser_instances', true), ''), 'off'),
                   s.named, s.status, i.input::text
              FROM c
              -- Probes by primary key as correlated subqueries (OFFSET 0: never pulled up into a join).
              JOIN LATERAL (SELECT * FROM df.instances x WHERE x.id = c.instance_id OFFSET 0) i ON true
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = i.submitted_by::oid
              LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                                  WHERE x.instance_id = c.instance_id
                                    AND x.scope_id = substring(c.status_details ->> 'execution_id' FROM '^(.*)::[0-9]+$')
                                 OFFSET 0) s ON true;
        END IF;
        RETURN;
    ELSE
        -- Bounded: each round excludes one more full role; past that, nothing is claimed this time.
        FOR v_round IN 1 .. 16 LOOP
            BEGIN
                IF p_instance_id IS NOT NULL THEN
                    SELECT * INTO v FROM df.nodes n
                     WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
                       FOR UPDATE SKIP LOCKED;
                ELSIF v_round = 1 THEN
                    SELECT * INTO v FROM df.nodes n WHERE n.run_at <= p_now ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
                ELSE
                    SELECT * INTO v FROM df.nodes n
                     WHERE n.run_at <= p_now AND n.submitted_by::oid <> ALL (v_full)
                     ORDER BY n.run_at LIMIT 1 FOR UPDATE SKIP LOCKED;
                END IF;
                IF NOT FOUND THEN
                    EXIT;
                END IF;
                v_limit := df._step_limit(v.submitted_by);
                IF v_limit IS NOT NULL AND NOT df._take_slot(v.submitted_by, v_limit, p_now) THEN
                    RAISE EXCEPTION 'role at its step limit' USING ERRCODE = 'PFL01';  -- internal: undo the row lock and the slot
                END IF;
                v_found := true;
                EXIT;
            EXCEPTION WHEN SQLSTATE 'PFL01' THEN
                v_full := v_full || v.submitted_by::oid;
                -- A SQL step that has waited for a slot longer than execution_acquire_timeout fails (0030):
                -- default 30 s under max_user_connections, only when set under df.set_role_limit.
                IF v.node_type = 'SQL' THEN
                    v_timeout := df._role_setting_int(v.submitted_by::oid, 'pg_durable.execution_acquire_timeout', 1000000000);
                    IF v_timeout IS NULL AND NOT EXISTS (SELECT 1 FROM df.role_limits l WHERE l.role = v.submitted_by) THEN
                        v_timeout := 30;
                    END IF;
                    IF v_timeout IS NOT NULL AND v.run_at < p_now - make_interval(secs => v_timeout) THEN
                        PERFORM df._fail_unslotted(v.instance_id, v.id, v.submitted_by, v_limit, v_timeout, p_now);
                    END IF;
                END IF;
                EXIT WHEN p_instance_id IS NOT NULL;
            END;
        END LOOP;
    END IF;
    IF NOT v_found THEN
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
      LEFT JOIN LATERAL (SELECT x.named, x.status FROM df.scopes x
                          WHERE x.instance_id = v.instance_id AND x.scope_id = v_scope OFFSET 0) s ON true
     WHERE i.id = v.instance_id;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Claims up to p_limit ready df.nodes rows for a batch, oldest first, with df._claim's columns; with step limits in force or p_limit <= 1 it is df._claim. Locks only the node rows.
CREATE OR REPLACE FUNCTION df._claim_many(p_now timestamp with time zone, p_limit integer)
 RETURNS TABLE(instance_id character varying, id character varying, node_type text, query text, result_name text, status text, stamp text, state jsonb, attempts integer, run_at timestamp with time zone, options jsonb, instance_status text, root_node character varying, label text, vars jsonb, generation integer, owner text, owner_exists boolean, owner_is_superuser boolean, superuser_gate text, named jsonb, scope_status text, input text)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    IF df._limits_in_force() OR p_limit <= 1 THEN
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
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_field(p_field text, p_label text, p_min integer, p_max integer, p_names text[] DEFAULT NULL::text[], p_question boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_item text;
    v_base text;
    v_step text;
    v_bounds text[];
    v_token text;
    v_values integer[];
    v_pos integer;
BEGIN
    FOREACH v_item IN ARRAY string_to_array(p_field, ',') LOOP
        IF v_item = '' THEN
            RETURN format('field ''%s'': empty item in list ''%s''', p_label, p_field);
        END IF;
        v_base := split_part(v_item, '/', 1);
        v_step := CASE WHEN strpos(v_item, '/') > 0 THEN substr(v_item, strpos(v_item, '/') + 1) END;
        IF v_step IS NOT NULL AND (v_step !~ '^[0-9]{1,9}$' OR v_step::integer = 0) THEN
            RETURN format('field ''%s'': invalid step ''%s'' (must be a whole number of at least 1)', p_label, v_step);
        END IF;
        IF v_base = '*' THEN
            CONTINUE;
        ELSIF v_base = '?' THEN
            IF NOT p_question THEN
                RETURN format('field ''%s'': ''?'' is only allowed in day of month and day of week', p_label);
            ELSIF v_step IS NOT NULL THEN
                RETURN format('field ''%s'': ''?'' cannot have a step', p_label);
            END IF;
            CONTINUE;
        END IF;
        v_bounds := string_to_array(v_base, '-');
        IF v_base = '' OR cardinality(v_bounds) > 2 THEN
            RETURN format('field ''%s'': invalid item ''%s''', p_label, v_item);
        END IF;
        v_values := '{}';
        FOREACH v_token IN ARRAY v_bounds LOOP
            IF v_token ~ '^[0-9]+$' THEN
                IF length(v_token) > 9 OR v_token::integer NOT BETWEEN p_min AND p_max THEN
                    RETURN format('field ''%s'': value %s out of range %s-%s', p_label, v_token, p_min, p_max);
                END IF;
                v_values := v_values || v_token::integer;
            ELSE
                v_pos := array_position(p_names, upper(v_token));
                IF v_pos IS NULL THEN
                    RETURN format('field ''%s'': invalid value ''%s''', p_label, v_token);
                END IF;
                v_values := v_values || (p_min + v_pos - 1);
            END IF;
        END LOOP;
        IF cardinality(v_values) = 2 AND v_values[1] > v_values[2] THEN
            RETURN format('field ''%s'': range ''%s'' starts after it ends', p_label, v_base);
        END IF;
    END LOOP;
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_fire_after(p_minutes integer[], p_hours integer[], p_doms integer[], p_months integer[], p_dows integer[], p_day_or boolean, p_tz text, p_after timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_local  timestamp := date_trunc('minute', p_after AT TIME ZONE p_tz);
    v_last   integer := extract(year FROM v_local)::integer + 10;
    v_cursor timestamp := v_local + interval '1 minute';
    v_wall   timestamp;
    v_t      timestamptz;
BEGIN
    -- A candidate whose instant is not after p_after (the repeated hour of a fall-back) moves the
    -- cursor one wall minute on; that happens at most for the minutes of one repeated hour.
    FOR i IN 1..10000 LOOP
        v_wall := df._cron_next_wall(p_minutes, p_hours, p_doms, p_months, p_dows, p_day_or, v_cursor, v_last);
        IF v_wall IS NULL THEN
            RETURN NULL;
        END IF;
        v_t := df._cron_wall_to_instant(v_wall, p_tz);
        IF v_t > p_after THEN
            RETURN v_t;
        END IF;
        v_cursor := v_wall + interval '1 minute';
    END LOOP;
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_next(p_cron text, p_tz text, p_after timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    c record;
BEGIN
    IF p_after IS NULL THEN
        RAISE EXCEPTION 'after must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO c FROM df._cron_std_parse(p_cron);
    RETURN df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, p_after);
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_next_wall(p_minutes integer[], p_hours integer[], p_doms integer[], p_months integer[], p_dows integer[], p_day_or boolean, p_from timestamp without time zone, p_last_year integer)
 RETURNS timestamp without time zone
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_day    date := p_from::date;
    v_hour   integer := extract(hour FROM p_from)::integer;
    v_minute integer := extract(minute FROM p_from)::integer;
    v_dom_ok boolean;
    v_dow_ok boolean;
    v_h      integer;
    v_m      integer;
BEGIN
    WHILE extract(year FROM v_day) <= p_last_year LOOP
        IF NOT (extract(month FROM v_day)::integer = ANY (p_months)) THEN
            v_day := (date_trunc('month', v_day) + interval '1 month')::date;
            v_hour := 0;
            v_minute := 0;
            CONTINUE;
        END IF;
        v_dom_ok := extract(day FROM v_day)::integer = ANY (p_doms);
        v_dow_ok := extract(dow FROM v_day)::integer = ANY (p_dows);
        IF (p_day_or AND (v_dom_ok OR v_dow_ok)) OR (NOT p_day_or AND v_dom_ok AND v_dow_ok) THEN
            FOREACH v_h IN ARRAY p_hours LOOP
                CONTINUE WHEN v_h < v_hour;
                SELECT min(m) INTO v_m FROM unnest(p_minutes) AS m WHERE v_h > v_hour OR m >= v_minute;
                IF v_m IS NOT NULL THEN
                    RETURN v_day + make_time(v_h, v_m, 0);
                END IF;
            END LOOP;
        END IF;
        v_day := v_day + 1;
        v_hour := 0;
        v_minute := 0;
    END LOOP;
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_std_field(p_expr text, p_text text, p_label text, p_min integer, p_max integer, p_names text[] DEFAULT NULL::text[])
 RETURNS integer[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_item   text;
    v_parts  text[];
    v_base   text;
    v_step   integer;
    v_tokens text[];
    v_token  text;
    v_vals   integer[];
    v_n      numeric;
    v_pos    integer;
    v_lo     integer;
    v_hi     integer;
    v_out    integer[] := '{}';
    v_fail   text;
BEGIN
    <<items>>
    FOREACH v_item IN ARRAY string_to_array(p_text, ',') LOOP
        IF v_item = '' THEN
            v_fail := 'empty list item';
            EXIT;
        END IF;
        v_parts := string_to_array(v_item, '/');
        IF cardinality(v_parts) > 2 THEN
            v_fail := format('''%s'' has more than one ''/''', v_item);
            EXIT;
        END IF;
        v_base := v_parts[1];
        v_step := 1;
        IF cardinality(v_parts) = 2 THEN
            IF v_parts[2] !~ '^[0-9]+$' THEN
                v_fail := format('step ''%s'' is not a number', v_parts[2]);
                EXIT;
            END IF;
            v_step := least(v_parts[2]::numeric, 1000)::integer;
            IF v_step = 0 THEN
                v_fail := 'range step cannot be zero';
                EXIT;
            END IF;
        END IF;
        IF v_base = '*' THEN
            v_lo := p_min;
            v_hi := p_max;
        ELSIF v_base = '?' THEN
            v_fail := '''?'' is only allowed in the day-of-month and day-of-week fields';
            EXIT;
        ELSE
            IF strpos(v_base, '-') > 0 THEN
                v_tokens := string_to_array(v_base, '-');
                IF cardinality(v_tokens) <> 2 OR v_tokens[1] = '' OR v_tokens[2] = '' THEN
                    v_fail := format('''%s'' is not a valid range', v_base);
                    EXIT;
                END IF;
            ELSE
                v_tokens := ARRAY[v_base];
            END IF;
            v_vals := '{}';
            FOREACH v_token IN ARRAY v_tokens LOOP
                IF v_token ~ '^[0-9]+$' THEN
                    v_n := v_token::numeric;
                    IF v_n < p_min THEN
                        v_fail := format('%s is below the minimum %s', v_n, p_min);
                        EXIT items;
                    ELSIF v_n > p_max THEN
                        v_fail := format('%s is above the maximum %s', v_n, p_max);
                        EXIT items;
                    END IF;
                    v_vals := v_vals || v_n::integer;
                ELSIF v_token ~ '^[A-Za-z]+$' THEN
                    v_pos := array_position(p_names, lower(v_token));
                    IF v_pos IS NULL THEN
                        v_fail := CASE WHEN p_names IS NULL
                                       THEN format('names are not allowed in this field (''%s'')', v_token)
                                       ELSE format('unknown name ''%s''', v_token) END;
                        EXIT items;
                    END IF;
                    v_vals := v_vals || (p_min + v_pos - 1);
                ELSE
                    v_fail := format('''%s'' is not a number%s', v_token, CASE WHEN p_names IS NULL THEN '' ELSE ' or name' END);
                    EXIT items;
                END IF;
            END LOOP;
            IF cardinality(v_vals) = 2 THEN
                IF v_vals[1] > v_vals[2] THEN
                    v_fail := format('range %s starts after it ends', v_base);
                    EXIT;
                END IF;
                v_lo := v_vals[1];
                v_hi := v_vals[2];
            ELSE
                IF cardinality(v_parts) = 2 AND v_base !~ '^[0-9]+$' THEN
                    v_fail := 'a step needs ''*'', a range or a number before ''/''';
                    EXIT;
                END IF;
                v_lo := v_vals[1];
                -- `5/15` = from 5 to the maximum, every 15.
                v_hi := CASE WHEN cardinality(v_parts) = 2 THEN p_max ELSE v_vals[1] END;
            END IF;
        END IF;
        v_out := v_out || ARRAY(SELECT generate_series(v_lo, v_hi, v_step));
    END LOOP;
    IF v_fail IS NOT NULL THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': % field ''%'': %', p_expr, p_label, p_text, v_fail
            USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY(SELECT DISTINCT v FROM unnest(v_out) AS v ORDER BY v);
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_std_parse(p_expr text, OUT minutes integer[], OUT hours integer[], OUT doms integer[], OUT months integer[], OUT dows integer[], OUT day_or boolean)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_trimmed text;
    v_macro   text;
    v_fields  text[];
BEGIN
    IF p_expr IS NULL THEN
        RAISE EXCEPTION 'cron must not be NULL' USING ERRCODE = '22004';
    END IF;
    v_trimmed := btrim(p_expr, E' \t\n\r');
    v_macro := CASE lower(v_trimmed)
                   WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
                   WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
                   WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
                   WHEN '@hourly' THEN '0 * * * *' END;
    IF v_trimmed LIKE '@%' AND v_macro IS NULL THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': unknown shorthand ''%''', p_expr, v_trimmed USING ERRCODE = '22023';
    END IF;
    v_trimmed := coalesce(v_macro, v_trimmed);
    v_fields := CASE WHEN v_trimmed = '' THEN '{}'::text[] ELSE regexp_split_to_array(v_trimmed, E'[ \t\n\r]+') END;
    IF cardinality(v_fields) <> 5 THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': expected 5 fields (minute hour day-of-month month day-of-week), got %',
            p_expr, cardinality(v_fields) USING ERRCODE = '22023';
    END IF;
    minutes := df._cron_std_field(p_expr, v_fields[1], 'minute', 0, 59);
    hours := df._cron_std_field(p_expr, v_fields[2], 'hour', 0, 23);
    doms := df._cron_std_field(p_expr, v_fields[3], 'day of month', 1, 31);
    months := df._cron_std_field(p_expr, v_fields[4], 'month', 1, 12,
                                 ARRAY['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']);
    dows := df._cron_std_field(p_expr, v_fields[5], 'day of week', 0, 7,
                               ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']);
    dows := ARRAY(SELECT DISTINCT d % 7 FROM unnest(dows) AS d ORDER BY 1);
    day_or := v_fields[3] NOT LIKE '*%' AND v_fields[5] NOT LIKE '*%';
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_validate(p_expr text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_trimmed text := btrim(p_expr, E' \t\n\r');
    v_fields text[];
    v_problem text;
BEGIN
    v_fields := CASE WHEN v_trimmed = '' THEN '{}'::text[] ELSE regexp_split_to_array(v_trimmed, E'[ \t\n\r]+') END;
    IF v_trimmed LIKE '@%' THEN
        v_problem := format('shortcut ''%s'' is not supported; write the 5 fields (minute hour day-of-month month day-of-week)', v_fields[1]);
    ELSIF cardinality(v_fields) NOT IN (5, 6) THEN
        v_problem := format('expected 5 fields (minute hour day-of-month month day-of-week) and an optional year, found %s',
                            cardinality(v_fields));
    ELSE
        v_problem := coalesce(
            df._cron_field(v_fields[1], 'minute', 0, 59),
            df._cron_field(v_fields[2], 'hour', 0, 23),
            df._cron_field(v_fields[3], 'day of month', 1, 31, NULL, true),
            df._cron_field(v_fields[4], 'month', 1, 12,
                           ARRAY['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']),
            df._cron_field(v_fields[5], 'day of week', 1, 7,
                           ARRAY['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'], true),
            CASE WHEN cardinality(v_fields) = 6 THEN df._cron_field(v_fields[6], 'year', 1970, 2100) END);
    END IF;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': %', p_expr, v_problem USING ERRCODE = '22023';
    END IF;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._cron_wall_to_instant(p_wall timestamp without time zone, p_tz text)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_naive  timestamptz := p_wall AT TIME ZONE 'UTC';
    v_a      timestamptz;
    v_b      timestamptz;
    v_lo     timestamptz;
    v_hi     timestamptz;
    v_mid    timestamptz;
    v_lo_off interval;
BEGIN
    -- The offsets a day before and after; the wall time is one of these two readings if it exists.
    v_a := v_naive - (((v_naive - interval '1 day') AT TIME ZONE p_tz) - ((v_naive - interval '1 day') AT TIME ZONE 'UTC'));
    v_b := v_naive - (((v_naive + interval '1 day') AT TIME ZONE p_tz) - ((v_naive + interval '1 day') AT TIME ZONE 'UTC'));
    IF (least(v_a, v_b) AT TIME ZONE p_tz) = p_wall THEN
        RETURN least(v_a, v_b);
    ELSIF (greatest(v_a, v_b) AT TIME ZONE p_tz) = p_wall THEN
        RETURN greatest(v_a, v_b);
    END IF;
    -- In a gap: find the transition between the two readings, to the second.
    v_lo := least(v_a, v_b);
    v_hi := greatest(v_a, v_b);
    v_lo_off := (v_lo AT TIME ZONE p_tz) - (v_lo AT TIME ZONE 'UTC');
    WHILE v_hi - v_lo > interval '1 second' LOOP
        v_mid := date_trunc('second', v_lo + (v_hi - v_lo) / 2);
        IF (v_mid AT TIME ZONE p_tz) - (v_mid AT TIME ZONE 'UTC') = v_lo_off THEN
            v_lo := v_mid;
        ELSE
            v_hi := v_mid;
        END IF;
    END LOOP;
    RETURN v_hi;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment SECURITY DEFINER (owner of schema df). Drops the step runners of roles without usage on df (or gone); run by df.revoke_usage.
CREATE OR REPLACE FUNCTION df._drop_stale_runners()
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    x record;
    v_dropped integer := 0;
BEGIN
    FOR x IN SELECT r.role, r.runner FROM df._runners r
              WHERE CASE WHEN EXISTS (SELECT 1 FROM pg_roles o WHERE o.oid = r.role)
                         THEN NOT has_schema_privilege(r.role, 'df', 'USAGE') ELSE true END
                FOR UPDATE
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s(text)', x.runner);
        DELETE FROM df._runners WHERE role = x.role;
        v_dropped := v_dropped + 1;
    END LOOP;
    RETURN v_dropped;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._ensure(p_input text, p_strict boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_node df._envelope_parts := df._ensure_fields(p_input, p_strict);
BEGIN
    IF v_node.node_type IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN df._envelope(v_node.node_type, v_node.left_node, v_node.right_node, v_node.condition_node,
                        v_node.extra_nodes, v_node.query, v_node.result_name, v_node.options);
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._ensure_fields(p_input text, p_strict boolean DEFAULT false)
 RETURNS df._envelope_parts
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_sql df._envelope_parts;
    v_parts df._envelope_parts;
    v_json json;
    v_marker text;
    v_helper text;
    v_type text;
BEGIN
    IF p_input IS NULL THEN
        RETURN NULL;
    END IF;
    v_sql.node_type := 'SQL';
    v_sql.query := p_input;
    IF ltrim(p_input, E' \t\n\r') NOT LIKE '{%' THEN
        v_marker := current_setting('df.non_future_helper', true);
        IF v_marker LIKE E'%\n%' AND split_part(v_marker, E'\n', 2) = df._helper_stamp() THEN
            v_helper := split_part(v_marker, E'\n', 1);
            RAISE EXCEPTION '% cannot be used as a workflow step. Call % before df.start().', v_helper, v_helper
                USING ERRCODE = '55000';
        END IF;
        RETURN v_sql;
    END IF;
    BEGIN
        v_json := p_input::json;
    EXCEPTION WHEN data_exception THEN
        RETURN v_sql;  -- not JSON: an SQL statement that happens to start with '{'
    END;
    v_parts := df._envelope_fields(v_json);
    IF v_parts.error IS NULL THEN
        IF v_parts.node_type = ANY (df._node_types()) THEN
            RETURN v_parts;
        ELSIF NOT p_strict THEN
            RETURN v_sql;
        END IF;
        RAISE EXCEPTION 'Invalid durable function: Unknown node_type ''%''. Valid types: %',
            v_parts.node_type, array_to_string(df._node_types(), ', ') USING ERRCODE = 'PF001';
    END IF;
    -- Malformed: it is a (corrupt) envelope only if it carries a string node_type (last one wins).
    IF json_typeof(v_json) = 'object' AND json_typeof(v_json -> 'node_type') = 'string' THEN
        v_type := v_json ->> 'node_type';
    END IF;
    IF v_type IS NULL THEN
        RETURN v_sql;
    ELSIF NOT p_strict THEN
        RAISE EXCEPTION 'Invalid Durofut JSON: failed to deserialize workflow step: %', v_parts.error
            USING ERRCODE = 'PF001';
    ELSIF v_type = ANY (df._node_types()) THEN
        RAISE EXCEPTION 'Invalid durable function: Malformed Durofut JSON with node_type ''%'': %', v_type, v_parts.error
            USING ERRCODE = 'PF001';
    END IF;
    RAISE EXCEPTION 'Invalid durable function: Unknown node_type ''%''. Valid types: %',
        v_type, array_to_string(df._node_types(), ', ') USING ERRCODE = 'PF001';
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._envelope(p_node_type text, p_left_node text DEFAULT NULL::text, p_right_node text DEFAULT NULL::text, p_condition_node text DEFAULT NULL::text, p_extra_nodes text[] DEFAULT NULL::text[], p_query text DEFAULT NULL::text, p_result_name text DEFAULT NULL::text, p_options text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN '{"node_type":' || to_json(p_node_type)::text
        || coalesce(',"left_node":' || p_left_node, '')
        || coalesce(',"right_node":' || p_right_node, '')
        || coalesce(',"condition_node":' || p_condition_node, '')
        || CASE WHEN cardinality(p_extra_nodes) > 0
                THEN ',"extra_nodes":[' || array_to_string(p_extra_nodes, ',') || ']' ELSE '' END
        || coalesce(',"query":' || to_json(p_query)::text, '')
        || coalesce(',"result_name":' || to_json(p_result_name)::text, '')
        -- pgflare's own per-node options live under one extra key that pg_durable readers ignore.
        || coalesce(',"pgflare":' || p_options, '')
        || '}';
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._envelope_fields(p_json json)
 RETURNS df._envelope_parts
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_out df._envelope_parts;
    v_seen text[] := '{}';
    v_key text;
    v_value json;
    v_type text;
    v_all_objects boolean;
BEGIN
    v_type := json_typeof(p_json);
    IF v_type IS DISTINCT FROM 'object' THEN
        v_out.error := format('invalid type: %s, expected struct Durofut', df._json_unexpected(p_json));
        RETURN v_out;
    END IF;
    FOR v_key, v_value IN SELECT e.key, e.value FROM json_each(p_json) AS e LOOP
        CONTINUE WHEN v_key <> ALL (ARRAY['node_type', 'left_node', 'right_node', 'condition_node',
                                          'extra_nodes', 'query', 'result_name', 'pgflare']);
        IF v_key = ANY (v_seen) THEN
            v_out.error := format('duplicate field `%s`', v_key);
            RETURN v_out;
        END IF;
        v_seen := v_seen || v_key;
        v_type := json_typeof(v_value);
        IF v_key IN ('node_type', 'query', 'result_name') THEN
            IF v_type = 'null' AND v_key <> 'node_type' THEN
                CONTINUE;
            ELSIF v_type <> 'string' THEN
                v_out.error := format('invalid type: %s, expected a string', df._json_unexpected(v_value));
                RETURN v_out;
            END IF;
            CASE v_key
                WHEN 'node_type' THEN v_out.node_type := v_value #>> '{}';
                WHEN 'query' THEN v_out.query := v_value #>> '{}';
                ELSE v_out.result_name := v_value #>> '{}';
            END CASE;
        ELSIF v_key = 'pgflare' THEN
            CONTINUE WHEN v_type = 'null';
            IF v_type <> 'object' THEN
                v_out.error := format('invalid type: %s, expected a pgflare options object', df._json_unexpected(v_value));
                RETURN v_out;
            END IF;
            v_out.options := df._json_compact(v_value::jsonb);
        ELSIF v_key = 'extra_nodes' THEN
            IF v_type <> 'array' THEN
                v_out.error := format('invalid type: %s, expected a sequence', df._json_unexpected(v_value));
                RETURN v_out;
            END IF;
            SELECT coalesce(array_agg(e.value::text ORDER BY e.ord), '{}'),
                   coalesce(bool_and(json_typeof(e.value) = 'object'), true)
              INTO v_out.extra_nodes, v_all_objects
              FROM json_array_elements(v_value) WITH ORDINALITY AS e(value, ord);
            IF NOT v_all_objects THEN
                v_out.error := 'extra_nodes entries must be Durofut JSON objects';
                RETURN v_out;
            END IF;
        ELSE
            CONTINUE WHEN v_type = 'null';
            IF v_type <> 'object' THEN
                v_out.error := CASE WHEN v_key = 'condition_node'
                                    THEN 'condition_node must be a Durofut JSON object'
                                    ELSE 'Durofut children must be JSON objects' END;
                RETURN v_out;
            END IF;
            CASE v_key
                WHEN 'left_node' THEN v_out.left_node := v_value::text;
                WHEN 'right_node' THEN v_out.right_node := v_value::text;
                ELSE v_out.condition_node := v_value::text;
            END CASE;
        END IF;
    END LOOP;
    IF v_out.node_type IS NULL THEN
        v_out.error := 'missing field `node_type`';
    END IF;
    RETURN v_out;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._eval_dsl(p_expr text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
 SET standard_conforming_strings TO 'on'
AS $function$
DECLARE
    c_functions constant text[] := ARRAY['df.sql', 'df.seq', 'df.as', 'df.join', 'df.join3', 'df.race', 'df.if',
        'df.if_rows', 'df.loop', 'df.break', 'df.sleep', 'df.wait_for_schedule', 'df.wait_for_signal', 'df.http',
        'df.http_multipart', 'df.retry', 'df.timeout'];
    c_operators constant text[] := ARRAY['~>', '|=>', '&', '|', '?>', '!>', '@>'];
    c_types     constant text[] := ARRAY['jsonb', 'json', 'text', 'integer', 'int', 'bigint', 'numeric'];
    c_max_len   constant integer := 1048576;
    c_max_depth constant integer := 200;
    -- One token per match; the final '.' takes any character no other branch accepts, so nothing is
    -- skipped. The RE is an alternation, so PostgreSQL takes the longest match at each position.
    c_token_re  constant text := '([ \t\n\r\f\v]+|''(?:[^'']|'''')*''|\|=>|~>|\?>|!>|@>|=>|::|[&|(),]'
                                 || '|-?[0-9]+(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?|.)';
    v_raw    text[];
    v_toks   text[] := '{}';
    v_pos    integer[] := '{}';
    v_at     integer := 1;
    v_n      integer := 0;
    v_out    text[] := '{}';
    v_depth  integer := 0;
    v_tok    text;
    v_low    text;
    v_next   text;
    v_why    text;
    v_result text;
    i        integer;
BEGIN
    IF p_expr IS NULL THEN
        RAISE EXCEPTION 'workflow expression must not be NULL' USING ERRCODE = 'PF002';
    END IF;
    IF length(p_expr) > c_max_len THEN
        RAISE EXCEPTION 'workflow expression is longer than % characters', c_max_len USING ERRCODE = 'PF002';
    END IF;

    SELECT coalesce(array_agg(m.tok[1] ORDER BY m.k), '{}') INTO v_raw
      FROM regexp_matches(p_expr, c_token_re, 'g') WITH ORDINALITY AS m(tok, k);
    FOREACH v_tok IN ARRAY v_raw LOOP
        IF v_tok !~ '^[ \t\n\r\f\v]+$' THEN
            v_n := v_n + 1;
            v_toks[v_n] := v_tok;
            v_pos[v_n] := v_at;
        END IF;
        v_at := v_at + length(v_tok);
    END LOOP;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'workflow expression is empty' USING ERRCODE = 'PF002';
    END IF;

    i := 1;
    WHILE i <= v_n LOOP
        v_tok := v_toks[i];
        v_low := lower(v_tok);
        v_next := CASE WHEN i < v_n THEN v_toks[i + 1] END;
        v_why := NULL;
        IF left(v_tok, 1) = '''' AND length(v_tok) >= 2 AND right(v_tok, 1) = '''' THEN
            v_out := v_out || v_tok;                                   -- string literal
        ELSIF v_tok ~ '^-?[0-9]+(\.[0-9]+)?$' THEN
            v_out := v_out || v_tok;                                   -- number
        ELSIF v_tok = ANY (c_operators) THEN
            v_out := v_out || v_tok;
        ELSIF v_tok = '(' THEN
            v_depth := v_depth + 1;
            IF v_depth > c_max_depth THEN
                v_why := format('parentheses nested deeper than %s', c_max_depth);
            END IF;
            v_out := v_out || v_tok;
        ELSIF v_tok = ')' THEN
            v_depth := v_depth - 1;
            IF v_depth < 0 THEN
                v_why := 'unbalanced '')''';
            END IF;
            v_out := v_out || v_tok;
        ELSIF v_tok = ',' THEN
            IF v_depth = 0 THEN
                v_why := 'a comma outside a function call';
            END IF;
            v_out := v_out || v_tok;
        ELSIF v_tok = '::' THEN
            IF lower(v_next) = ANY (c_types) THEN
                v_out := v_out || ('::' || lower(v_next));
                i := i + 1;
            ELSE
                v_why := format('a cast to "%s" (allowed: %s)', coalesce(v_next, ''), array_to_string(c_types, ', '));
            END IF;
        ELSIF v_tok ~ '^[A-Za-z_]' THEN
            IF v_low IN ('null', 'true', 'false') THEN
                v_out := v_out || upper(v_low);
            ELSIF v_low = ANY (c_functions) AND v_next = '(' THEN
                v_out := v_out || v_low;
            ELSIF v_low ~ '^[a-z_][a-z0-9_]*$' AND v_next = '=>' AND v_depth > 0 THEN
                v_out := v_out || (v_low || ' =>');                   -- named argument
                i := i + 1;
            ELSIF strpos(v_low, '.') > 0 AND v_next = '(' THEN
                v_why := format('function "%s" (allowed: %s)', v_tok, array_to_string(c_functions, ', '));
            ELSE
                v_why := format('"%s" (SQL text goes inside a string literal, e.g. ''SELECT 1'')', v_tok);
            END IF;
        ELSE
            v_why := format('"%s"', v_tok);
        END IF;
        IF v_why IS NOT NULL THEN
            RAISE EXCEPTION 'invalid workflow expression at character %: unexpected %', v_pos[i], v_why
                USING ERRCODE = 'PF002',
                      HINT = 'A workflow is built from string literals, numbers, the DSL operators ~> |=> & | ?> !> @>, parentheses and df.* DSL functions.';
        END IF;
        i := i + 1;
    END LOOP;
    IF v_depth <> 0 THEN
        RAISE EXCEPTION 'invalid workflow expression: unbalanced ''(''' USING ERRCODE = 'PF002';
    END IF;

    EXECUTE 'SELECT (' || array_to_string(v_out, ' ') || ')::text' INTO v_result;
    RETURN v_result;
END;
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._explain_cut(p_text text, p_limit integer, p_keep integer)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_chars integer := p_keep;
BEGIN
    IF octet_length(p_text) <= p_limit THEN
        RETURN p_text;
    END IF;
    WHILE octet_length(left(p_text, v_chars)) > p_keep LOOP
        v_chars := v_chars - 1;
    END LOOP;
    RETURN left(p_text, v_chars) || '...';
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._explain_graph(p_envelope text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_nodes jsonb;
    v_root  text;
BEGIN
    BEGIN
        SELECT jsonb_object_agg(f.id, jsonb_build_object('t', f.node_type, 'q', f.query, 'n', f.result_name,
                                                         'l', f.left_node, 'r', f.right_node)),
               min(f.id) FILTER (WHERE f.ord = 1)
          INTO v_nodes, v_root
          FROM df._flatten(p_envelope) f;
    EXCEPTION WHEN SQLSTATE 'PF001' OR SQLSTATE '54000' THEN
        RETURN SQLERRM;
    END;
    RETURN df._explain_tree(v_root, v_nodes);
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._explain_json(p_text text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN p_text::jsonb;
EXCEPTION WHEN OTHERS THEN   -- not JSON, or JSON that jsonb cannot hold (\u0000, too deep)
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._explain_label(p_type text, p_query text, p_name text, p_has_left boolean, p_has_right boolean)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_suffix text := CASE WHEN p_name IS NOT NULL THEN ' |=> ''' || p_name || '''' ELSE '' END;
    v_cfg    jsonb;
    v_text   text;
BEGIN
    IF p_type IN ('WAIT_SCHEDULE', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL', 'LOOP', 'BREAK', 'JOIN') THEN
        v_cfg := df._explain_json(p_query);
    END IF;
    CASE p_type
    WHEN 'SQL' THEN
        RETURN 'SQL: ' || df._explain_cut(coalesce(p_query, '?'), 50, 47) || v_suffix;
    WHEN 'SLEEP' THEN
        RETURN 'SLEEP ' || coalesce(p_query, '?') || 's' || v_suffix;
    WHEN 'WAIT_SCHEDULE' THEN
        v_text := CASE WHEN jsonb_typeof(v_cfg -> 'cron_expr') = 'string' THEN v_cfg ->> 'cron_expr' ELSE '?' END;
        RETURN 'WAIT ''' || v_text || '''' || v_suffix;
    WHEN 'HTTP', 'HTTP_MULTIPART' THEN
        IF v_cfg IS NULL THEN
            RETURN p_type || ' ? ?' || v_suffix;
        END IF;
        RETURN p_type || ' '
            || CASE WHEN jsonb_typeof(v_cfg -> 'method') = 'string' THEN v_cfg ->> 'method' ELSE 'POST' END || ' '
            || CASE WHEN jsonb_typeof(v_cfg -> 'url') = 'string' THEN df._explain_cut(v_cfg ->> 'url', 40, 37) ELSE '?' END
            || v_suffix;
    WHEN 'SIGNAL' THEN
        v_text := CASE WHEN jsonb_typeof(v_cfg -> 'signal_name') = 'string' THEN v_cfg ->> 'signal_name' ELSE '?' END;
        RETURN 'SIGNAL ''' || v_text || ''''
            || CASE WHEN jsonb_typeof(v_cfg -> 'timeout_seconds') = 'number' AND (v_cfg ->> 'timeout_seconds') ~ '^-?[0-9]+$'
                    THEN ' (' || (v_cfg ->> 'timeout_seconds') || 's)' ELSE '' END
            || v_suffix;
    WHEN 'LOOP' THEN
        RETURN CASE WHEN jsonb_typeof(v_cfg -> 'condition_node') = 'string' THEN 'LOOP (while)' ELSE 'LOOP (infinite)' END
            || v_suffix;
    WHEN 'BREAK' THEN
        IF jsonb_typeof(v_cfg -> 'break_value') = 'string' THEN
            RETURN 'BREAK ''' || df._explain_cut(v_cfg ->> 'break_value', 20, 17) || '''' || v_suffix;
        END IF;
        RETURN 'BREAK' || v_suffix;
    WHEN 'IF' THEN
        RETURN 'IF' || v_suffix;
    WHEN 'JOIN' THEN
        RETURN 'JOIN ('
            || (p_has_left::integer + p_has_right::integer
                + CASE WHEN jsonb_typeof(v_cfg -> 'extra_nodes') = 'array' THEN jsonb_array_length(v_cfg -> 'extra_nodes') ELSE 0 END)
            || ')' || v_suffix;
    WHEN 'RACE' THEN
        RETURN 'RACE';
    WHEN 'THEN' THEN
        RETURN 'SEQUENCE';
    ELSE
        RETURN p_type;
    END CASE;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._explain_tree(p_root text, p_nodes jsonb)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    -- task stack: kind N = node line(s), C = children of a node, L = a literal line
    t_kind  text[] := ARRAY['N'];
    t_arg   text[] := ARRAY[p_root];
    t_pre   text[] := ARRAY[''];
    t_last  boolean[] := ARRAY[true];
    v_top   integer := 1;
    -- tasks produced by one step, pushed in reverse
    k_kind  text[];
    k_arg   text[];
    k_pre   text[];
    k_last  boolean[];
    v_lines text[] := '{}';
    v_kind  text;
    v_arg   text;
    v_pre   text;
    v_last  boolean;
    v_node  jsonb;
    v_item  jsonb;
    v_type  text;
    v_conn  text;
    v_cfg   jsonb;
    v_seq   text[];
    q_stack text[];
    q_top   integer;
    v_id    text;
    v_branches text[];
    i       integer;
    v_text  text;
BEGIN
    WHILE v_top > 0 LOOP
        v_kind := t_kind[v_top]; v_arg := t_arg[v_top]; v_pre := t_pre[v_top]; v_last := t_last[v_top];
        v_top := v_top - 1;
        IF v_kind = 'L' THEN
            v_lines := v_lines || v_arg;
            CONTINUE;
        END IF;
        v_node := p_nodes -> v_arg;
        CONTINUE WHEN v_node IS NULL;
        v_type := v_node ->> 't';
        k_kind := '{}'; k_arg := '{}'; k_pre := '{}'; k_last := '{}';

        IF v_kind = 'N' THEN
            v_conn := CASE WHEN v_pre = '' THEN '' WHEN v_last THEN '└─' ELSE '├─' END;
            IF v_type = 'THEN' THEN
                -- A THEN chain becomes one list (left then right, recursively); THENs get no line.
                v_seq := '{}'; q_stack := ARRAY[v_arg]; q_top := 1;
                WHILE q_top > 0 LOOP
                    v_id := q_stack[q_top]; q_top := q_top - 1;
                    v_item := p_nodes -> v_id;
                    CONTINUE WHEN v_item IS NULL;
                    IF v_item ->> 't' = 'THEN' THEN
                        IF v_item ->> 'r' IS NOT NULL THEN q_top := q_top + 1; q_stack[q_top] := v_item ->> 'r'; END IF;
                        IF v_item ->> 'l' IS NOT NULL THEN q_top := q_top + 1; q_stack[q_top] := v_item ->> 'l'; END IF;
                    ELSE
                        v_seq := v_seq || v_id;
                    END IF;
                END LOOP;
                FOR i IN 1 .. coalesce(array_length(v_seq, 1), 0) LOOP
                    v_item := p_nodes -> v_seq[i];
                    k_kind := k_kind || 'L'::text;
                    k_arg := k_arg || (v_pre || CASE WHEN i = 1 THEN v_conn ELSE '→ ' END
                        || df._explain_label(v_item ->> 't', v_item ->> 'q', v_item ->> 'n',
                                             v_item ->> 'l' IS NOT NULL, v_item ->> 'r' IS NOT NULL)
                        || coalesce(v_item ->> 'm', ''));
                    k_pre := k_pre || ''::text; k_last := k_last || true;
                    IF v_item ->> 't' NOT IN ('THEN', 'SQL', 'SLEEP', 'WAIT_SCHEDULE', 'HTTP', 'HTTP_MULTIPART') THEN
                        k_kind := k_kind || 'C'::text; k_arg := k_arg || v_seq[i];
                        k_pre := k_pre || (v_pre || '    '); k_last := k_last || true;
                    END IF;
                END LOOP;
            ELSE
                v_lines := v_lines || (v_pre || v_conn
                    || df._explain_label(v_type, v_node ->> 'q', v_node ->> 'n', v_node ->> 'l' IS NOT NULL, v_node ->> 'r' IS NOT NULL)
                    || coalesce(v_node ->> 'm', ''));
                k_kind := ARRAY['C']; k_arg := ARRAY[v_arg];
                k_pre := ARRAY[CASE WHEN v_pre = '' THEN '    ' WHEN v_last THEN v_pre || '    ' ELSE v_pre || '│   ' END];
                k_last := ARRAY[true];
            END IF;
        ELSE
            -- Children of LOOP / IF / JOIN / RACE, each under a heading line, indented two more spaces.
            IF v_type IN ('LOOP', 'IF', 'JOIN') THEN
                v_cfg := df._explain_json(v_node ->> 'q');
            END IF;
            IF v_type = 'LOOP' THEN
                IF v_node ->> 'l' IS NOT NULL THEN
                    k_kind := k_kind || ARRAY['L', 'N']; k_arg := k_arg || ARRAY[v_pre || '↻ body:', v_node ->> 'l'];
                    k_pre := k_pre || ARRAY['', v_pre || '  ']; k_last := k_last || ARRAY[true, true];
                END IF;
                IF jsonb_typeof(v_cfg -> 'condition_node') = 'string' THEN
                    k_kind := k_kind || ARRAY['L', 'N']; k_arg := k_arg || ARRAY[v_pre || '? while:', v_cfg ->> 'condition_node'];
                    k_pre := k_pre || ARRAY['', v_pre || '  ']; k_last := k_last || ARRAY[true, true];
                END IF;
            ELSIF v_type = 'IF' THEN
                IF jsonb_typeof(v_cfg -> 'condition_node') = 'string' THEN
                    k_kind := k_kind || ARRAY['L', 'N']; k_arg := k_arg || ARRAY[v_pre || '? condition:', v_cfg ->> 'condition_node'];
                    k_pre := k_pre || ARRAY['', v_pre || '  ']; k_last := k_last || ARRAY[true, true];
                END IF;
                IF v_node ->> 'l' IS NOT NULL THEN
                    k_kind := k_kind || ARRAY['L', 'N']; k_arg := k_arg || ARRAY[v_pre || '✓ then:', v_node ->> 'l'];
                    k_pre := k_pre || ARRAY['', v_pre || '  ']; k_last := k_last || ARRAY[true, true];
                END IF;
                IF v_node ->> 'r' IS NOT NULL THEN
                    k_kind := k_kind || ARRAY['L', 'N']; k_arg := k_arg || ARRAY[v_pre || '✗ else:', v_node ->> 'r'];
                    k_pre := k_pre || ARRAY['', v_pre || '  ']; k_last := k_last || ARRAY[true, true];
                END IF;
            ELSIF v_type IN ('JOIN', 'RACE') THEN
                v_branches := '{}';
                IF v_node ->> 'l' IS NOT NULL THEN v_branches := v_branches || (v_node ->> 'l'); END IF;
                IF v_node ->> 'r' IS NOT NULL THEN v_branches := v_branches || (v_node ->> 'r'); END IF;
                IF v_type = 'JOIN' AND jsonb_typeof(v_cfg -> 'extra_nodes') = 'array' THEN
                    v_branches := v_branches || ARRAY(
                        SELECT e.value #>> '{}' FROM jsonb_array_elements(v_cfg -> 'extra_nodes') WITH ORDINALITY AS e(value, n)
                         WHERE jsonb_typeof(e.value) = 'string' ORDER BY e.n);
                END IF;
                FOR i IN 1 .. coalesce(array_length(v_branches, 1), 0) LOOP
                    k_kind := k_kind || ARRAY['L', 'N']; k_arg := k_arg || ARRAY[v_pre || '║ branch ' || i || ':', v_branches[i]];
                    k_pre := k_pre || ARRAY['', v_pre || '  '];
                    k_last := k_last || ARRAY[true, i = array_length(v_branches, 1)];
                END LOOP;
            END IF;
        END IF;

        FOR i IN REVERSE coalesce(array_length(k_kind, 1), 0) .. 1 LOOP
            v_top := v_top + 1;
            t_kind[v_top] := k_kind[i]; t_arg[v_top] := k_arg[i]; t_pre[v_top] := k_pre[i]; t_last[v_top] := k_last[i];
        END LOOP;
    END LOOP;

    -- Trailing whitespace of the whole text goes; labels may hold newlines, so split after joining.
    v_text := rtrim(array_to_string(v_lines, E'\n'), E' \t\n\r\f\v');
    IF v_text = '' THEN
        RETURN '';
    END IF;
    RETURN (
        WITH l AS (
            SELECT regexp_replace(s.line, E'\r$', '') AS line, s.n
              FROM unnest(string_to_array(v_text, E'\n')) WITH ORDINALITY AS s(line, n)
        )
        SELECT string_agg(rpad(l.line, w.width), E'\n' ORDER BY l.n)
          FROM l, (SELECT max(char_length(l2.line)) + 4 AS width FROM l l2) w
    );
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Fails a SQL step that waited longer than pg_durable.execution_acquire_timeout for a slot, and its instance, with pg_durable's "connection limit reached" message; skips (false) when the instance row is held.
CREATE OR REPLACE FUNCTION df._fail_unslotted(p_instance_id character varying, p_node_id character varying, p_role regrole, p_limit integer, p_timeout integer, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_msg text := format('pg_durable: connection limit reached (max_user_connections=%s). Timed out after %ss waiting for an available execution slot.',
                         p_limit, p_timeout);
BEGIN
    PERFORM 1 FROM df.nodes n
     WHERE n.instance_id = p_instance_id AND n.id = p_node_id AND n.run_at <= p_now
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM 1 FROM df.instances i
         WHERE i.id = p_instance_id AND i.status IN ('pending', 'running')
           FOR NO KEY UPDATE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;  -- a checkpoint holds it: the next claim looks again
    END;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM df._apply(p_instance_id, jsonb_build_object(
        'nodes', jsonb_build_array(jsonb_build_object('id', p_node_id, 'status', 'failed', 'result', to_jsonb(v_msg)::text,
                                                      'run_at', NULL, 'nowait', false)),
        'instance', jsonb_build_object('status', 'failed', 'output', v_msg),
        'events', jsonb_build_array(jsonb_build_object('node_id', p_node_id, 'kind', 'failed', 'attempt', 1, 'detail', v_msg))));
    -- The instance's other ready rows are withdrawn when claimed (their instance is no longer active).
    RETURN true;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._flatten(p_envelope text)
 RETURNS TABLE(ord integer, id character varying, node_type text, query text, result_name text, left_node character varying, right_node character varying, condition_node character varying, extra_nodes character varying[], parent_id character varying, depth integer, path text, options jsonb)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    c_types     constant text[] := ARRAY['SQL', 'THEN', 'IF', 'JOIN', 'LOOP', 'BREAK', 'RACE', 'SLEEP',
                                         'WAIT_SCHEDULE', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL'];
    c_max_depth constant integer := 256;
    c_max_nodes constant integer := 10000;
    c_prefix    constant text := 'Invalid durable function graph: ';
    -- work stack (top at v_top)
    s_node  jsonb[] := '{}';
    s_ord   integer[] := '{}';
    v_top   integer := 0;
    -- per node, indexed by discovery ordinal (root = 1)
    n_type   text[] := '{}';
    n_query  text[] := '{}';
    n_name   text[] := '{}';
    n_left   integer[] := '{}';
    n_right  integer[] := '{}';
    n_cond   integer[] := '{}';
    n_extras text[] := '{}';     -- comma-separated ordinals
    n_parent integer[] := '{}';
    n_depth  integer[] := '{}';
    n_path   text[] := '{}';
    n_opts   jsonb[] := '{}';    -- pgflare per-node options (retry, timeout)
    v_preorder integer[] := '{}';
    v_npre   integer := 0;
    v_count  integer := 1;
    -- current node
    v_root   jsonb;
    v_node   jsonb;
    v_ord    integer;
    v_type   text;
    v_query  text;
    v_config jsonb;
    v_config_err text;
    v_has_cond boolean;
    v_extras jsonb;
    v_children jsonb[];
    v_segments text[];
    v_child_ords integer[];
    v_extra_ords integer[];
    v_child  jsonb;
    v_path   text;
    v_err    text;
    i        integer;
    -- ids
    v_ids    varchar(8)[];
    v_unique bigint;
    v_try    integer := 0;
    v_id     varchar(8);
    v_merge  boolean := false;  -- some node has a condition or extras to merge into its query
BEGIN
    -- ===== PHASE 1: parse the root =====
    BEGIN
        v_root := p_envelope::jsonb;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        RAISE EXCEPTION '%root: failed to deserialize Durofut: %', c_prefix, SQLERRM USING ERRCODE = 'PF001';
    END;
    v_err := df._node_shape_error(v_root);
    IF v_err IS NOT NULL THEN
        RAISE EXCEPTION '%root: failed to deserialize Durofut: %', c_prefix, v_err USING ERRCODE = 'PF001';
    END IF;

    -- ===== PHASE 2: walk (node, left, right, condition, extras), validating each node =====
    v_top := 1; s_node[1] := v_root; s_ord[1] := 1;
    -- Every per-node array gets its slot at discovery, so all of them start at index 1 and stay
    -- aligned for the multi-array unnest below (a first assignment at index k would start at k).
    n_type[1] := NULL; n_query[1] := NULL; n_name[1] := NULL; n_left[1] := NULL; n_right[1] := NULL;
    n_cond[1] := NULL; n_extras[1] := NULL; n_parent[1] := NULL; n_depth[1] := 0; n_path[1] := 'root';
    v_root := NULL;
    WHILE v_top > 0 LOOP
        v_node := s_node[v_top];
        v_ord := s_ord[v_top];
        s_node[v_top] := NULL;   -- release the subtree
        v_top := v_top - 1;
        v_path := n_path[v_ord];

        IF n_depth[v_ord] > c_max_depth THEN
            RAISE EXCEPTION '%: Graph exceeds maximum nesting depth of %. Simplify the workflow or break it into multiple instances.',
                c_prefix || v_path, c_max_depth USING ERRCODE = '54000';
        END IF;
        v_type := v_node ->> 'node_type';
        IF NOT v_type = ANY (c_types) THEN
            RAISE EXCEPTION '%: Unknown node_type ''%''. Valid types: %', c_prefix || v_path, v_type,
                array_to_string(c_types, ', ') USING ERRCODE = 'PF001';
        END IF;

        v_has_cond := jsonb_typeof(v_node -> 'condition_node') = 'object';
        v_extras := CASE WHEN jsonb_typeof(v_node -> 'extra_nodes') = 'array'
                          AND jsonb_array_length(v_node -> 'extra_nodes') > 0 THEN v_node -> 'extra_nodes' END;
        IF v_has_cond AND v_type NOT IN ('IF', 'LOOP') THEN
            RAISE EXCEPTION '%: condition_node is not valid for % nodes', c_prefix || v_path, v_type USING ERRCODE = 'PF001';
        END IF;
        IF v_extras IS NOT NULL AND v_type <> 'JOIN' THEN
            RAISE EXCEPTION '%: extra_nodes is not valid for % nodes', c_prefix || v_path, v_type USING ERRCODE = 'PF001';
        END IF;

        -- The shape df.nodes' CHECK constraints require, reported as a graph error (PF001) with its path
        -- instead of surfacing later as a constraint violation (found by fuzzing).
        v_err := CASE
            WHEN v_node ->> 'result_name' !~ '^[A-Za-z_][A-Za-z0-9_]*$'
                THEN format('result_name ''%s'' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*', v_node ->> 'result_name')
            WHEN v_type IN ('SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL')
             AND (coalesce(jsonb_typeof(v_node -> 'left_node'), '') = 'object'
                  OR coalesce(jsonb_typeof(v_node -> 'right_node'), '') = 'object')
                THEN format('%s nodes take no left_node or right_node', v_type)
            WHEN v_type IN ('SQL', 'SLEEP', 'WAIT_SCHEDULE', 'BREAK', 'HTTP', 'HTTP_MULTIPART', 'SIGNAL')
             AND v_node ->> 'query' IS NULL
                THEN format('%s nodes need a query', v_type)
            WHEN v_type IN ('THEN', 'JOIN', 'RACE', 'IF')
             AND NOT (coalesce(jsonb_typeof(v_node -> 'left_node'), '') = 'object'
                      AND coalesce(jsonb_typeof(v_node -> 'right_node'), '') = 'object')
                THEN format('%s nodes need both left_node and right_node', v_type)
            WHEN v_type IN ('THEN', 'RACE') AND v_node ->> 'query' IS NOT NULL
                THEN format('%s nodes take no query', v_type)
            WHEN v_type = 'IF' AND v_node ->> 'query' IS NULL AND NOT coalesce(v_has_cond, false)
                THEN 'IF nodes need a condition_node (or the if_rows query)'
            WHEN v_type = 'LOOP' AND coalesce(jsonb_typeof(v_node -> 'left_node'), '') <> 'object'
                THEN 'LOOP nodes need a left_node (the body)'
            WHEN v_type = 'LOOP' AND coalesce(jsonb_typeof(v_node -> 'right_node'), '') = 'object'
                THEN 'LOOP nodes take no right_node'
        END;
        IF v_err IS NOT NULL THEN
            RAISE EXCEPTION '%: %', c_prefix || v_path, v_err USING ERRCODE = 'PF001';
        END IF;

        -- Config query of a composite node: the legacy embedded children are rejected; parse errors
        -- matter only when a condition/extras must be merged in (checked after the children, as §1.5).
        v_query := v_node ->> 'query';
        v_config := NULL; v_config_err := NULL;
        IF v_query IS NOT NULL AND v_type IN ('IF', 'LOOP', 'JOIN') THEN
            BEGIN
                v_config := v_query::jsonb;
            EXCEPTION WHEN invalid_text_representation THEN
                v_config_err := SQLERRM;
            END;
            IF jsonb_typeof(v_config) = 'object' THEN
                IF v_type IN ('IF', 'LOOP') AND v_config ? 'condition_node' THEN
                    RAISE EXCEPTION '%: condition_node in % must be a first-class Durofut field, not embedded in query',
                        c_prefix || v_path, v_type USING ERRCODE = 'PF001';
                ELSIF v_type = 'JOIN' AND v_config ? 'extra_nodes' THEN
                    RAISE EXCEPTION '%: extra_nodes in % must be a first-class Durofut field, not embedded in query',
                        c_prefix || v_path, v_type USING ERRCODE = 'PF001';
                END IF;
            END IF;
        END IF;

        -- Children in walk order; each is counted and parsed when discovered.
        v_children := '{}'; v_segments := '{}';
        IF jsonb_typeof(v_node -> 'left_node') = 'object' THEN
            v_children := v_children || (v_node -> 'left_node'); v_segments := v_segments || 'left'::text;
        END IF;
        IF jsonb_typeof(v_node -> 'right_node') = 'object' THEN
            v_children := v_children || (v_node -> 'right_node'); v_segments := v_segments || 'right'::text;
        END IF;
        IF v_has_cond THEN
            v_children := v_children || (v_node -> 'condition_node'); v_segments := v_segments || 'condition_node'::text;
        END IF;
        IF v_extras IS NOT NULL THEN
            SELECT v_children || array_agg(e.value ORDER BY e.n),
                   v_segments || array_agg(format('extra_nodes[%s]', e.n - 1) ORDER BY e.n)
              INTO v_children, v_segments
              FROM jsonb_array_elements(v_extras) WITH ORDINALITY AS e(value, n);
        END IF;

        v_child_ords := '{}';
        FOR i IN 1 .. coalesce(array_length(v_children, 1), 0) LOOP
            v_child := v_children[i];
            IF v_count >= c_max_nodes THEN
                RAISE EXCEPTION '%.%: Workflow exceeds maximum node count of %. Simplify the workflow or break it into multiple instances.',
                    c_prefix || v_path, v_segments[i], c_max_nodes USING ERRCODE = '54000';
            END IF;
            v_err := df._node_shape_error(v_child);
            IF v_err IS NOT NULL THEN
                RAISE EXCEPTION '%.%: failed to deserialize Durofut child: %', c_prefix || v_path, v_segments[i], v_err
                    USING ERRCODE = 'PF001';
            END IF;
            v_count := v_count + 1;
            v_child_ords[i] := v_count;
            n_type[v_count] := NULL; n_query[v_count] := NULL; n_name[v_count] := NULL;
            n_left[v_count] := NULL; n_right[v_count] := NULL; n_cond[v_count] := NULL; n_extras[v_count] := NULL;
            n_parent[v_count] := v_ord;
            n_depth[v_count] := n_depth[v_ord] + 1;
            n_path[v_count] := v_path || '.' || v_segments[i];
        END LOOP;

        v_merge := v_merge OR coalesce(v_has_cond, false) OR v_extras IS NOT NULL;
        IF (v_has_cond OR v_extras IS NOT NULL) AND v_query IS NOT NULL THEN
            IF v_config_err IS NOT NULL THEN
                RAISE EXCEPTION '%: query in % must be valid JSON config: %', c_prefix || v_path, v_type, v_config_err
                    USING ERRCODE = 'PF001';
            ELSIF jsonb_typeof(v_config) <> 'object' THEN
                RAISE EXCEPTION '%: query in % must be a JSON config object', c_prefix || v_path, v_type
                    USING ERRCODE = 'PF001';
            END IF;
        END IF;

        -- Record the node (children are referenced by ordinal until ids exist).
        i := 0;
        n_type[v_ord] := v_type;
        n_query[v_ord] := v_query;
        n_name[v_ord] := v_node ->> 'result_name';
        n_opts[v_ord] := CASE WHEN jsonb_typeof(v_node -> 'pgflare') = 'object' THEN v_node -> 'pgflare' END;
        IF jsonb_typeof(v_node -> 'left_node') = 'object' THEN i := i + 1; n_left[v_ord] := v_child_ords[i]; END IF;
        IF jsonb_typeof(v_node -> 'right_node') = 'object' THEN i := i + 1; n_right[v_ord] := v_child_ords[i]; END IF;
        IF v_has_cond THEN i := i + 1; n_cond[v_ord] := v_child_ords[i]; END IF;
        IF v_extras IS NOT NULL THEN
            v_extra_ords := v_child_ords[i + 1 : array_length(v_child_ords, 1)];
            n_extras[v_ord] := array_to_string(v_extra_ords, ',');
        END IF;
        v_npre := v_npre + 1;
        v_preorder[v_npre] := v_ord;

        -- Push children reversed so the left subtree is walked first.
        FOR i IN REVERSE coalesce(array_length(v_children, 1), 0) .. 1 LOOP
            v_top := v_top + 1;
            s_node[v_top] := v_children[i];
            s_ord[v_top] := v_child_ords[i];
        END LOOP;
        v_children := NULL;
    END LOOP;

    -- ===== PHASE 3: node ids, unique within the graph =====
    IF v_count <= 64 THEN
        -- A small graph draws its ids one by one: the set-based draw below costs a query (~55 µs), more
        -- than all the draws of a graph this size.
        v_ids := '{}';
        WHILE cardinality(v_ids) < v_count LOOP
            v_try := v_try + 1;
            IF v_try > v_count + 10 THEN
                RAISE EXCEPTION '%root: exhausted 10 attempts to generate a graph-unique node ID', c_prefix
                    USING ERRCODE = '23505';
            END IF;
            v_id := df._new_id();
            IF NOT v_id = ANY (v_ids) THEN
                v_ids := v_ids || v_id;
            END IF;
        END LOOP;
    ELSE
        LOOP
            v_try := v_try + 1;
            SELECT array_agg(g.x), count(DISTINCT g.x) INTO v_ids, v_unique
              FROM (SELECT df._new_id() AS x FROM generate_series(1, v_count)) g;
            EXIT WHEN v_unique = v_count;
            IF v_try >= 10 THEN
                RAISE EXCEPTION '%root: exhausted 10 attempts to generate a graph-unique node ID', c_prefix
                    USING ERRCODE = '23505';
            END IF;
        END LOOP;
    END IF;

    -- ===== PHASE 4: rows in pre-order, with condition/extras merged into the config query =====
    -- Set-based (unnest + hash joins): subscripting large arrays inside a query is quadratic.
    IF v_count <= 64 AND NOT v_merge THEN
        -- A small graph with nothing to merge is returned row by row: starting the set-based query
        -- below costs ~70 µs per call, most of a one-step df.start's flattening (bench/ W2 sustained).
        FOR i IN 1 .. v_npre LOOP
            v_ord := v_preorder[i];
            ord := i;
            id := v_ids[v_ord];
            node_type := n_type[v_ord];
            query := n_query[v_ord];
            result_name := n_name[v_ord];
            left_node := v_ids[n_left[v_ord]];
            right_node := v_ids[n_right[v_ord]];
            condition_node := NULL;
            extra_nodes := NULL;
            parent_id := v_ids[n_parent[v_ord]];
            depth := n_depth[v_ord];
            path := n_path[v_ord];
            options := n_opts[v_ord];
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;
    RETURN QUERY
    WITH ids AS (
        SELECT t.nid, t.o FROM unnest(v_ids) WITH ORDINALITY AS t(nid, o)
    ), nodes AS (
        SELECT t.* FROM unnest(n_type, n_query, n_name, n_left, n_right, n_cond, n_extras, n_parent, n_depth, n_path, n_opts)
                        WITH ORDINALITY AS t(typ, qry, nam, lft, rgt, cnd, ext, par, dep, pth, opt, o)
    ), extras AS (
        SELECT n.o, array_agg(x.nid ORDER BY e.k)::varchar(8)[] AS eids
          FROM nodes n
         CROSS JOIN LATERAL unnest(string_to_array(n.ext, ',')) WITH ORDINALITY AS e(c, k)
          JOIN ids x ON x.o = e.c::bigint
         WHERE n.ext IS NOT NULL
         GROUP BY n.o
    )
    SELECT p.pos::integer,
           me.nid,
           n.typ,
           CASE WHEN n.cnd IS NULL AND n.ext IS NULL THEN n.qry
                ELSE '{' || concat_ws(',',
                        (SELECT string_agg(to_json(kv.key)::text || ':' || kv.value::text, ',' ORDER BY kv.k)
                           FROM json_each(n.qry::json) WITH ORDINALITY AS kv(key, value, k)),
                        '"condition_node":' || to_json(c.nid)::text,
                        '"extra_nodes":' || to_json(x.eids)::text) || '}'
           END,
           n.nam,
           l.nid, r.nid, c.nid, x.eids, par.nid,
           n.dep, n.pth, n.opt
      FROM unnest(v_preorder) WITH ORDINALITY AS p(o, pos)
      JOIN nodes n ON n.o = p.o
      JOIN ids me ON me.o = p.o
      LEFT JOIN ids l ON l.o = n.lft
      LEFT JOIN ids r ON r.o = n.rgt
      LEFT JOIN ids c ON c.o = n.cnd
      LEFT JOIN ids par ON par.o = n.par
      LEFT JOIN extras x ON x.o = p.o
     ORDER BY p.pos;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._helper_stamp()
 RETURNS text
 LANGUAGE plpgsql
 STABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN ((extract(epoch FROM statement_timestamp()) - 946684800) * 1000000)::bigint::text;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._hook_check(p_name text, p_scheme text, p_secret text, p_tolerance integer, p_max_body integer)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF p_name IS NOT NULL AND p_name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$' THEN
        RAISE EXCEPTION 'webhook name "%" is not valid: 1 to 100 characters A-Z a-z 0-9 _ . -, starting with a letter or digit (it is part of the URL /hooks/<name>)',
            p_name USING ERRCODE = '22023';
    END IF;
    IF p_scheme IS NOT NULL AND p_scheme NOT IN ('github', 'stripe', 'hmac') THEN
        RAISE EXCEPTION 'unknown webhook scheme "%": expected github, stripe or hmac', p_scheme USING ERRCODE = '22023';
    END IF;
    IF p_secret IS NOT NULL AND length(p_secret) NOT BETWEEN 16 AND 512 THEN
        RAISE EXCEPTION 'webhook secret must be 16 to 512 characters (omit it to have one generated)' USING ERRCODE = '22023';
    END IF;
    IF p_tolerance IS NOT NULL AND p_tolerance NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'tolerance_seconds must be between 1 and 86400, got %', p_tolerance USING ERRCODE = '22023';
    END IF;
    IF p_max_body IS NOT NULL AND p_max_body NOT BETWEEN 1 AND 16777216 THEN
        RAISE EXCEPTION 'max_body_bytes must be between 1 and 16777216, got %', p_max_body USING ERRCODE = '22023';
    END IF;
END;
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._hook_for_delivery(p_name text)
 RETURNS TABLE(id bigint, owner text, workflow text, scheme text, secret text, tolerance_seconds integer, max_body_bytes integer)
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT h.id, r.rolname::text, h.workflow, h.scheme, h.secret, h.tolerance_seconds, h.max_body_bytes
      FROM df._hooks AS h
      JOIN pg_catalog.pg_roles AS r ON r.oid = h.owner
     WHERE h.name = p_name
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._http_check(p_function text, p_url text, p_method text, p_methods text[], p_timeout_seconds integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_policy text := df._http_policy();
    v_scheme text;
    v_method text := upper(p_method);
BEGIN
    IF v_policy = 'disabled' THEN
        RAISE EXCEPTION '% is disabled. Rebuild with the ''http-allow-azure-domains'' Cargo feature to enable outbound HTTP requests.',
            p_function USING ERRCODE = '55000';
    END IF;
    IF p_url IS NULL OR p_method IS NULL OR p_timeout_seconds IS NULL THEN
        RAISE EXCEPTION '%: % cannot be NULL', p_function,
            CASE WHEN p_url IS NULL THEN 'url' WHEN p_method IS NULL THEN 'method' ELSE 'timeout_seconds' END
            USING ERRCODE = '22004';
    END IF;
    IF v_policy <> 'all' AND strpos(p_url, '{') = 0 THEN
        v_scheme := lower(split_part(p_url, '://', 1));
        IF v_scheme NOT IN ('http', 'https') THEN
            RAISE EXCEPTION 'Blocked: unsupported URL scheme ''%''. Only http and https are allowed.', v_scheme
                USING ERRCODE = '22023';
        END IF;
    END IF;
    IF NOT v_method = ANY (p_methods) THEN
        RAISE EXCEPTION '%', CASE WHEN p_function = 'df.http()'
                THEN format('Invalid HTTP method: %s. Must be GET, POST, PUT, DELETE, or PATCH', p_method)
                ELSE format('Invalid HTTP method for multipart: %s. Must be POST, PUT, or PATCH', p_method) END
            USING ERRCODE = '22023';
    END IF;
    IF p_timeout_seconds <= 0 THEN
        RAISE EXCEPTION 'Timeout must be positive' USING ERRCODE = '22023';
    END IF;
    RETURN v_method;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._http_policy()
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_policy text := lower(btrim(df._setting('http_policy', 'disabled')));
BEGIN
    IF v_policy NOT IN ('disabled', 'azure', 'azure+test', 'allowlist', 'all') THEN
        RAISE EXCEPTION 'invalid pg_durable.http_policy ''%'': expected disabled, azure, azure+test, allowlist or all',
            df._setting('http_policy', 'disabled') USING ERRCODE = '22023';
    END IF;
    RETURN v_policy;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._i64_or_null(p_text text)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE WHEN p_text ~ '^[+-]?[0-9]{1,30}$' THEN
               CASE WHEN p_text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
                    THEN p_text::numeric::bigint END
           END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._in_workflow()
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce(current_setting('df.in_workflow', true), '') = 'true'
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._inferred_status(p_instance_id text)
 RETURNS TABLE(node_id text, inferred_status text, inferred_status_from_ancestor_id text)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_root     text;
    v_ids      text[];
    v_types    text[];
    v_queries  text[];
    v_lefts    text[];
    v_rights   text[];
    v_statuses text[];
    v_gens     bigint[];
    v_sup      boolean[];
    v_pos      jsonb;        -- node id -> position in the arrays above
    v_n        integer;
    v_seen     boolean[];
    v_inf      text[];
    v_from     text[];
    -- the walk stack: node id, decisive ancestor, highest-generation ancestor (generation, id)
    s_node     text[] := '{}';
    s_nta      text[] := '{}';
    s_ag       bigint[] := '{}';
    s_aid      text[] := '{}';
    v_top      integer := 0;
    v_id       text;
    v_nta      text;
    v_ag       bigint;
    v_aid      text;
    v_i        integer;
    v_terminal boolean;
    v_super    boolean;
    v_cfg      jsonb;
    v_kids     text[];
    v_kid      text;
BEGIN
    SELECT i.root_node INTO v_root FROM df.instances AS i WHERE i.id = p_instance_id;

    WITH raw AS (
        SELECT n.id::text AS id, n.node_type, n.query, n.left_node::text AS left_node,
               n.right_node::text AS right_node, n.status,
               CASE WHEN jsonb_typeof(n.status_details -> 'execution_id') = 'string'
                    THEN string_to_array(n.status_details ->> 'execution_id', '::') END AS tok
        FROM df.nodes AS n
        WHERE n.instance_id = p_instance_id
    ), parsed AS (
        -- A stamp parses when it has an even number of tokens (odd-length scope + generation), a
        -- non-empty instance id, integer generations at every even position and non-empty node ids
        -- at the odd positions after the first.
        SELECT r.*, cardinality(r.tok) AS ntok,
               coalesce(cardinality(r.tok) >= 2 AND cardinality(r.tok) % 2 = 0 AND r.tok[1] <> ''
                        AND NOT EXISTS (
                            SELECT 1 FROM generate_series(2, cardinality(r.tok)) AS k
                            WHERE (k % 2 = 0 AND df._i64_or_null(r.tok[k]) IS NULL)
                               OR (k % 2 = 1 AND r.tok[k] = '')), false) AS valid
        FROM raw AS r
    ), levels AS (
        -- level 0 = the node's own (scope, generation); level k = its k-th ancestor scope and the
        -- generation of that scope which spawned the child.
        SELECT p.id, k AS lvl,
               array_to_string(p.tok[1:p.ntok - 1 - 2 * k], '::') AS scope,
               df._i64_or_null(p.tok[p.ntok - 2 * k]) AS gen
        FROM parsed AS p, generate_series(0, (p.ntok - 2) / 2) AS k
        WHERE p.valid
    ), scope_max AS (
        SELECT l.scope, max(l.gen) AS max_gen FROM levels AS l WHERE l.lvl = 0 GROUP BY l.scope
    ), superseded AS (
        SELECT l.id, bool_or(l.gen < m.max_gen) AS sup
        FROM levels AS l JOIN scope_max AS m ON m.scope = l.scope
        GROUP BY l.id
    ), nodes AS (
        SELECT p.id, p.node_type, p.query, p.left_node, p.right_node, p.status,
               CASE WHEN p.valid THEN df._i64_or_null(p.tok[p.ntok]) END AS gen,
               coalesce(s.sup, false) AS sup,
               row_number() OVER (ORDER BY p.id) AS pos
        FROM parsed AS p LEFT JOIN superseded AS s ON s.id = p.id
    )
    SELECT array_agg(x.id ORDER BY x.pos), array_agg(x.node_type ORDER BY x.pos),
           array_agg(x.query ORDER BY x.pos), array_agg(x.left_node ORDER BY x.pos),
           array_agg(x.right_node ORDER BY x.pos), array_agg(x.status ORDER BY x.pos),
           array_agg(x.gen ORDER BY x.pos), array_agg(x.sup ORDER BY x.pos),
           jsonb_object_agg(x.id, x.pos), count(*)
    INTO v_ids, v_types, v_queries, v_lefts, v_rights, v_statuses, v_gens, v_sup, v_pos, v_n
    FROM nodes AS x;

    IF v_n = 0 THEN
        RETURN;
    END IF;
    v_seen := array_fill(false, ARRAY[v_n]);
    v_inf := array_fill(NULL::text, ARRAY[v_n]);
    v_from := array_fill(NULL::text, ARRAY[v_n]);

    IF v_root IS NOT NULL THEN
        v_top := 1;
        s_node[1] := v_root; s_nta[1] := NULL; s_ag[1] := NULL; s_aid[1] := NULL;
    END IF;

    WHILE v_top > 0 LOOP
        v_id := s_node[v_top]; v_nta := s_nta[v_top]; v_ag := s_ag[v_top]; v_aid := s_aid[v_top];
        v_top := v_top - 1;
        v_i := (v_pos ->> v_id)::integer;
        CONTINUE WHEN v_i IS NULL OR v_seen[v_i];   -- dangling reference / already visited
        v_seen[v_i] := true;

        v_terminal := coalesce(v_statuses[v_i] IN ('completed', 'failed'), false);
        v_super := v_sup[v_i];
        IF v_terminal THEN
            IF NOT v_super THEN
                v_inf[v_i] := v_statuses[v_i];                     -- ran in the current generation
            ELSIF v_nta IS NOT NULL THEN
                v_inf[v_i] := 'skipped'; v_from[v_i] := v_nta;     -- an ancestor decided against it
            ELSE
                v_inf[v_i] := 'pending'; v_from[v_i] := v_aid;     -- older generation: will re-run
            END IF;
        ELSIF v_nta IS NOT NULL THEN
            v_inf[v_i] := 'skipped'; v_from[v_i] := v_nta;         -- untaken arm / after a failure
        ELSIF v_statuses[v_i] = 'running' THEN
            v_inf[v_i] := 'running';
        ELSE
            v_inf[v_i] := 'pending';
        END IF;

        -- Only a terminal node of the current generation decides for its descendants.
        IF v_terminal AND NOT v_super THEN
            v_nta := v_id;
        END IF;
        IF v_gens[v_i] IS NOT NULL AND (v_ag IS NULL OR v_gens[v_i] >= v_ag) THEN
            v_ag := v_gens[v_i]; v_aid := v_id;
        END IF;

        v_cfg := CASE WHEN upper(v_types[v_i]) IN ('IF', 'LOOP', 'JOIN') AND v_queries[v_i] IS NOT NULL
                      THEN df._jsonb_or_null(v_queries[v_i]) END;
        v_kids := CASE upper(v_types[v_i])
            WHEN 'THEN' THEN ARRAY[v_lefts[v_i], v_rights[v_i]]
            WHEN 'RACE' THEN ARRAY[v_lefts[v_i], v_rights[v_i]]
            WHEN 'JOIN' THEN ARRAY[v_lefts[v_i], v_rights[v_i]] || CASE
                WHEN jsonb_typeof(v_cfg -> 'extra_nodes') = 'array' THEN
                    ARRAY(SELECT e #>> '{}' FROM jsonb_array_elements(v_cfg -> 'extra_nodes') WITH ORDINALITY AS x(e, o)
                          WHERE jsonb_typeof(e) = 'string' ORDER BY o)
                ELSE '{}'::text[] END
            WHEN 'IF' THEN ARRAY[CASE WHEN jsonb_typeof(v_cfg -> 'condition_node') = 'string'
                                      THEN v_cfg ->> 'condition_node' END,
                                 v_lefts[v_i], v_rights[v_i]]
            WHEN 'LOOP' THEN ARRAY[v_lefts[v_i],
                                   CASE WHEN jsonb_typeof(v_cfg -> 'condition_node') = 'string'
                                        THEN v_cfg ->> 'condition_node' END]
            ELSE '{}'::text[] END;
        FOREACH v_kid IN ARRAY v_kids LOOP
            CONTINUE WHEN v_kid IS NULL;
            v_top := v_top + 1;
            s_node[v_top] := v_kid; s_nta[v_top] := v_nta; s_ag[v_top] := v_ag; s_aid[v_top] := v_aid;
        END LOOP;
    END LOOP;

    RETURN QUERY
        SELECT v_ids[k], coalesce(v_inf[k], v_statuses[k], 'pending'), v_from[k]
        FROM generate_subscripts(v_ids, 1) AS k;
END;
$function$

-- acl {<owner>=X/<owner>}
-- comment Creates a role's SECURITY DEFINER step runner df._run_<oid>, owned by the role and executable only by the worker; must run as the owner of schema df (df._make_runner). Returns why it made none, or NULL.
CREATE OR REPLACE FUNCTION df._install_runner(p_role regrole)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_role oid := p_role::oid;
    v_name text := (SELECT rolname FROM pg_roles WHERE oid = v_role);
    v_fn text := format('df._run_%s', v_role);
    v_worker oid := (SELECT nspowner FROM pg_namespace WHERE nspname = 'df');
    v_me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
    v_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    v_member boolean;
    v_granted_member boolean := false;
BEGIN
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    IF v_role = v_worker THEN
        RETURN NULL; -- the worker's own role: its steps run directly, no runner
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE oid = v_role) THEN
        RETURN format('role "%s" is a superuser, and a runner would let the worker act as one', v_name);
    END IF;
    IF has_schema_privilege(v_role, 'df', 'CREATE') THEN
        RETURN format('role "%s" has CREATE on schema df and could replace its own runner', v_name);
    END IF;
    IF NOT v_super AND NOT has_schema_privilege(v_me, 'df', 'CREATE') THEN
        RETURN format('"%s" cannot create functions in schema df (run df.grant_usage as the owner of schema df or a superuser)', current_user);
    END IF;
    IF NOT v_super THEN
        v_member := CASE WHEN current_setting('server_version_num')::int >= 160000
                         THEN pg_has_role(v_me, v_role, 'SET') ELSE pg_has_role(v_me, v_role, 'MEMBER') END;
        IF NOT v_member THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', v_name, current_user);
                v_granted_member := true;
            EXCEPTION WHEN insufficient_privilege THEN
                RETURN format('"%s" is not a member of "%s" and may not grant itself membership (GRANT %I TO %I, or CREATEROLE on PostgreSQL 15)',
                              current_user, v_name, v_name, current_user);
            END;
        END IF;
    END IF;

    EXECUTE format('DROP FUNCTION IF EXISTS %s(text)', v_fn);
    EXECUTE format($f$
CREATE FUNCTION %1$s(p_sql text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $run$
-- pgflare step runner of the role with OID %2$s, created by df.grant_usage. Do not alter it: it refuses
-- to run once it does not run as that role.
DECLARE
    c refcursor;
    r record;
    v_rows text[] := '{}';
    v_path text;
BEGIN
    -- Only as its owner, in a security-definer context, called by the worker's role. SECURITY INVOKER
    -- makes current_user the caller; a SET role clause shows in the role setting.
    IF (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) IS DISTINCT FROM %2$s::oid
       OR pg_catalog.current_setting('role') <> 'none'
       OR NOT pg_catalog.pg_has_role(session_user, (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'df'), 'MEMBER') THEN
        RAISE EXCEPTION 'pgflare: step runner %1$s refused to run: it must run as role %2$s (SECURITY DEFINER, unaltered) and be called by the worker; current_user is "%%", session_user "%%". Re-create it with df.grant_usage',
            current_user, session_user USING ERRCODE = '42501';
    END IF;
    -- The owner's own default search_path, as a session of its own would have it (SPEC §3.1 runs each
    -- step on a connection authenticated as the owner): role+database, role, database settings, else
    -- the server default. "$user" resolves to the owner here.
    SELECT pg_catalog.substr(x, 13) INTO v_path
      FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) x
     WHERE x LIKE 'search_path=%%'
       AND ((s.setrole = %2$s AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))
            OR (s.setrole = 0 AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))
     ORDER BY s.setrole = 0, s.setdatabase = 0
     LIMIT 1;
    IF v_path IS NULL THEN
        -- The worker's reset value is the server default unless the worker has a role setting of its own.
        SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) x
                                  WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)
                                    AND x LIKE 'search_path=%%')
                    THEN boot_val ELSE reset_val END
          INTO v_path FROM pg_catalog.pg_settings WHERE name = 'search_path';
    END IF;
    PERFORM pg_catalog.set_config('search_path', v_path, true);
    -- Row-returning statements become a cursor whose rows are all fetched here, as the owner; the worker
    -- then FETCHes the exhausted cursor for its column names and types only (no row is computed then).
    c := 'pgflare_step_rows';
    BEGIN
        OPEN c FOR EXECUTE p_sql;
    EXCEPTION WHEN invalid_cursor_definition THEN
        c := NULL; -- returns no rows (DML without RETURNING, DDL, SET, …): nothing ran yet
    END;
    IF c IS NULL THEN
        EXECUTE p_sql;
        c := 'pgflare_step_rows';
        OPEN c FOR SELECT WHERE false;
    ELSE
        LOOP
            FETCH c INTO r;
            EXIT WHEN NOT FOUND;
            v_rows := v_rows OPERATOR(pg_catalog.||) r::text;
        END LOOP;
    END IF;
    -- Deferred triggers the step queued would fire at COMMIT, as the worker: fire them here, as the
    -- owner, then defer again (df's own foreign keys are INITIALLY DEFERRED).
    SET CONSTRAINTS ALL IMMEDIATE;
    SET CONSTRAINTS ALL DEFERRED;
    RETURN pg_catalog.to_jsonb(v_rows);
END
$run$
$f$, v_fn, v_role);
    EXECUTE format('GRANT CREATE ON SCHEMA df TO %I', v_name);
    EXECUTE format('ALTER FUNCTION %s(text) OWNER TO %I', v_fn, v_name);
    -- After the owner change: an entry for the old owner would have become the new owner's.
    EXECUTE format('REVOKE ALL ON FUNCTION %s(text) FROM PUBLIC', v_fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s(text) TO %s', v_fn, v_worker::regrole);
    EXECUTE format('REVOKE CREATE ON SCHEMA df FROM %I', v_name);
    IF v_granted_member THEN
        EXECUTE format('REVOKE %I FROM %I', v_name, current_user);
    END IF;
    INSERT INTO df._runners (role, runner, created_by) VALUES (v_role, v_fn, v_me)
        ON CONFLICT (role) DO UPDATE SET runner = EXCLUDED.runner, created_by = EXCLUDED.created_by, created_at = now();
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Trigger of df.instances: records started_at when the status first leaves pending (the first claim) and finished_at when it becomes completed, failed or cancelled.
CREATE OR REPLACE FUNCTION df._instance_times()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF OLD.status = 'pending' AND NEW.status <> 'cancelled' THEN
        NEW.started_at := coalesce(NEW.started_at, now());
    END IF;
    IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
        NEW.finished_at := now();
    ELSE
        NEW.finished_at := NULL;
    END IF;
    RETURN NEW;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._json_compact(p_value jsonb)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN regexp_replace(p_value::text, '("(?:[^"\\]|\\.)*")|\s+', '\1', 'g');
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._json_unexpected(p_value json)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN CASE json_typeof(p_value)
        WHEN 'string' THEN 'string ' || p_value::text
        WHEN 'number' THEN CASE WHEN p_value::text ~ '^-?[0-9]+$' THEN 'integer `' ELSE 'floating point `' END
                           || p_value::text || '`'
        WHEN 'boolean' THEN 'boolean `' || p_value::text || '`'
        WHEN 'array' THEN 'sequence'
        WHEN 'object' THEN 'map'
        ELSE 'null' END;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._jsonb_or_null(p_text text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN p_text::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$function$

-- acl {<owner>=X/<owner>}
-- comment Trigger on df.nodes: refuses a step larger than pgflare.max_step_bytes or a graph larger than pgflare.max_graph_bytes (54000).
CREATE OR REPLACE FUNCTION df._limit_nodes()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_step  text := current_setting('pgflare.max_step_bytes', true);
    v_graph text := current_setting('pgflare.max_graph_bytes', true);
    v_max_step  bigint := CASE WHEN v_step ~ '^\s*[0-9]{1,12}\s*$' AND btrim(v_step)::bigint > 0 THEN btrim(v_step)::bigint ELSE 1048576 END;
    v_max_graph bigint := CASE WHEN v_graph ~ '^\s*[0-9]{1,12}\s*$' AND btrim(v_graph)::bigint > 0 THEN btrim(v_graph)::bigint ELSE 8388608 END;
    r record;
BEGIN
    SELECT n.id, n.node_type, octet_length(n.query) AS bytes INTO r
      FROM new_nodes n
     WHERE octet_length(n.query) > v_max_step
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'Workflow step too large: the % node''s text is % bytes, over the limit of % bytes (pgflare.max_step_bytes)',
            r.node_type, r.bytes, v_max_step
            USING ERRCODE = '54000', HINT = 'Pass large data through a table or a variable reference instead of the step text.';
    END IF;
    SELECT n.instance_id, sum(coalesce(octet_length(n.query), 0) + coalesce(octet_length(n.result_name), 0)) AS bytes INTO r
      FROM new_nodes n
     GROUP BY n.instance_id
    HAVING sum(coalesce(octet_length(n.query), 0) + coalesce(octet_length(n.result_name), 0)) > v_max_graph
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'Workflow too large: its steps'' text totals % bytes, over the limit of % bytes (pgflare.max_graph_bytes)',
            r.bytes, v_max_graph
            USING ERRCODE = '54000', HINT = 'Simplify the workflow or break it into multiple instances.';
    END IF;
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Trigger on df.signals: refuses a payload larger than pgflare.max_signal_bytes (54000).
CREATE OR REPLACE FUNCTION df._limit_signal()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_set text := current_setting('pgflare.max_signal_bytes', true);
    v_max bigint := CASE WHEN v_set ~ '^\s*[0-9]{1,12}\s*$' AND btrim(v_set)::bigint > 0 THEN btrim(v_set)::bigint ELSE 1048576 END;
    v_bytes bigint := octet_length(NEW.payload::text);
BEGIN
    IF v_bytes > v_max THEN
        RAISE EXCEPTION 'Signal data too large: % bytes, over the limit of % bytes (pgflare.max_signal_bytes)', v_bytes, v_max
            USING ERRCODE = '54000';
    END IF;
    RETURN NEW;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Trigger on df.vars: refuses a value larger than pgflare.max_var_bytes (54000).
CREATE OR REPLACE FUNCTION df._limit_var()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_set text := current_setting('pgflare.max_var_bytes', true);
    v_max bigint := CASE WHEN v_set ~ '^\s*[0-9]{1,12}\s*$' AND btrim(v_set)::bigint > 0 THEN btrim(v_set)::bigint ELSE 1048576 END;
    v_bytes bigint := octet_length(NEW.value);
BEGIN
    IF v_bytes > v_max THEN
        RAISE EXCEPTION 'Variable % too large: % bytes, over the limit of % bytes (pgflare.max_var_bytes)', NEW.name, v_bytes, v_max
            USING ERRCODE = '54000';
    END IF;
    RETURN NEW;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Whether any step limit applies (df.role_limits rows or a pg_durable.max_user_connections setting); the claim takes its single-statement path when not. PL/pgSQL so that its plan is cached per session (0031).
CREATE OR REPLACE FUNCTION df._limits_in_force()
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN EXISTS (SELECT 1 FROM df.role_limits)
        OR coalesce(current_setting('pg_durable.max_user_connections', true), '') <> ''
        OR EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c
                    WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                      AND starts_with(c, 'pg_durable.max_user_connections='));
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._list_cursor(p_created_at timestamp with time zone, p_id text)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT encode(convert_to('v1|' || to_char(p_created_at, 'YYYY-MM-DD"T"HH24:MI:SS.USOF') || '|' || p_id,
                             'UTF8'), 'hex')
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._list_cursor_decode(p_cursor text, OUT o_created_at timestamp with time zone, OUT o_id text)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_text    text;
    v_rest    text;
    v_ts      text;
BEGIN
    IF p_cursor = '' OR length(p_cursor) > 512 OR length(p_cursor) % 2 <> 0
       OR p_cursor !~ '^[0-9A-Fa-f]+$' THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    BEGIN
        v_text := convert_from(decode(p_cursor, 'hex'), 'UTF8');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END;
    -- '<version>|<ts>|<id>': the id is everything after the second '|'.
    IF split_part(v_text, '|', 1) <> 'v1' OR strpos(v_text, '|') = 0 THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    v_rest := substr(v_text, strpos(v_text, '|') + 1);
    IF strpos(v_rest, '|') = 0 THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    v_ts := substr(v_rest, 1, strpos(v_rest, '|') - 1);
    o_id := substr(v_rest, strpos(v_rest, '|') + 1);
    IF v_ts = '' OR o_id = ''
       OR v_ts !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}[+-][0-9]{2}(:[0-9]{2})?$' THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END IF;
    -- Well-shaped but impossible (month 13, …): also a bad cursor rather than a cast error.
    BEGIN
        o_created_at := v_ts::timestamptz;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'df.list_instances: invalid after_cursor' USING ERRCODE = '22023';
    END;
END;
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._list_limit(p_limit integer)
 RETURNS integer
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_setting text := btrim(df._setting('list_instances_max_limit', '1000'));
    v_max     integer := 1000;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = '22023';
    END IF;
    -- An unparsable or out-of-range setting falls back to the default (pg_durable's GUC range is
    -- 1..1000000, which PostgreSQL enforced for it).
    IF v_setting ~ '^[0-9]{1,7}$' AND v_setting::integer BETWEEN 1 AND 1000000 THEN
        v_max := v_setting::integer;
    END IF;
    IF p_limit > v_max THEN
        RAISE EXCEPTION 'df.list_instances: limit_count (%) exceeds pg_durable.list_instances_max_limit (%); request fewer rows, or use the paginated df.list_instances overload (after_cursor/next_cursor) for large result sets',
            p_limit, v_max USING ERRCODE = '54000';
    END IF;
    RETURN p_limit;
END;
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Locks the instance row (FOR NO KEY UPDATE, after the caller's node row: node, then instance) and returns {instance, nodes, scopes} for the ids asked for, so a checkpoint reads everything it needs in one round trip. The instance lock is SKIP LOCKED first; a busy row is waited for only while no session waits for this transaction, and for under half of deadlock_timeout, else 55P03 (the engine retries): an outside transaction locking in any order is never the one aborted by a deadlock with the worker.
CREATE OR REPLACE FUNCTION df._lock_and_load(p_instance_id character varying, p_node_ids character varying[], p_scope_ids text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (owner only). Runs one statement on a dblink loopback session (foreign server pgflare_loopback, the owner's user mapping) with pgflare.start_as set to the caller, optionally after taking a launch slot; called by df._start_new and df._signal_new.
CREATE OR REPLACE FUNCTION df._loopback_run(p_caller text, p_sql text, p_what text, p_slots boolean)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_dblink   text;
    v_max      integer;
    v_timeout  numeric;
    v_deadline timestamptz;
    v_slot     integer := -1;
    v_conn     text := 'pgflare_new_' || pg_backend_pid();
    v_id       text;
    v_state    text;
    v_msg      text;
BEGIN
    SELECT n.nspname INTO v_dblink FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'dblink';
    IF v_dblink IS NULL THEN
        RAISE EXCEPTION '% with transaction_mode => ''new'' needs the dblink extension, which is not installed in database "%"', p_what, current_database()
            USING ERRCODE = '0A000',
                  HINT = 'Run CREATE EXTENSION dblink (a superuser, or your provider''s extension tool), then create the loopback server pgflare_loopback (docs/SQL.md, "Out-of-band starts and signals"). Or use the default transaction_mode => ''caller'' and commit.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_foreign_server s WHERE s.srvname = 'pgflare_loopback')
       OR NOT EXISTS (SELECT 1 FROM pg_user_mappings m WHERE m.srvname = 'pgflare_loopback' AND m.umuser IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))) THEN
        RAISE EXCEPTION '% with transaction_mode => ''new'' needs the foreign server pgflare_loopback and a user mapping for %, the owner of schema df', p_what, current_user
            USING ERRCODE = '0A000',
                  HINT = format('CREATE SERVER pgflare_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host ''…'', port ''…'', dbname %L); GRANT USAGE ON FOREIGN SERVER pgflare_loopback TO %I; CREATE USER MAPPING FOR %I SERVER pgflare_loopback OPTIONS (user %L, password ''…'') (docs/SQL.md, "Out-of-band starts and signals").',
                                current_database(), current_user, current_user, current_user);
    END IF;

    -- Admission (starts only): one of max_new_transaction_starts slots, as pg_durable takes them.
    v_max := coalesce(df._role_setting_int(0, 'pg_durable.max_new_transaction_starts', 1000), 2);
    v_timeout := coalesce((SELECT v::numeric FROM nullif(btrim(current_setting('pg_durable.new_transaction_start_timeout', true)), '') v
                            WHERE v ~ '^[0-9]+(\.[0-9]+)?$'), 5);
    v_deadline := clock_timestamp() + make_interval(secs => v_timeout);
    LOOP
        EXIT WHEN NOT p_slots;
        FOR s IN 0 .. v_max - 1 LOOP
            IF pg_try_advisory_lock(1346982470, s) THEN
                v_slot := s;
                EXIT;
            END IF;
        END LOOP;
        EXIT WHEN v_slot >= 0;
        IF clock_timestamp() >= v_deadline THEN
            RAISE EXCEPTION 'pg_durable: transaction_mode => ''new'' launch limit reached (max_new_transaction_starts=%). Timed out after %s waiting for a launch slot before opening the loopback session.',
                v_max, v_timeout USING ERRCODE = '53400';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;

    BEGIN
        EXECUTE format('SELECT %I.dblink_connect(%L, %L)', v_dblink, v_conn, 'pgflare_loopback');
        EXECUTE format('SELECT %I.dblink_exec(%L, %L)', v_dblink, v_conn,
                       format('SET application_name = %L; SET df.in_workflow = %L; SET lock_timeout = 30000; SET statement_timeout = 30000; SET pgflare.start_as = %L',
                              'pg_durable:backend:new-transaction', 'false', p_caller));
        EXECUTE format('SELECT id FROM %I.dblink(%L, %L) AS t(id text)', v_dblink, v_conn, p_sql) INTO v_id;
        EXECUTE format('SELECT %I.dblink_disconnect(%L)', v_dblink, v_conn);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
        BEGIN
            EXECUTE format('SELECT %I.dblink_disconnect(%L)', v_dblink, v_conn);
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- never connected
        END;
        IF v_slot >= 0 THEN
            PERFORM pg_advisory_unlock(1346982470, v_slot);
        END IF;
        IF v_msg LIKE '%lock timeout%' THEN
            RAISE EXCEPTION 'pg_durable: transaction_mode => ''new'' launch hit lock_timeout after 30000ms (%)', v_msg USING ERRCODE = v_state;
        ELSIF v_msg LIKE '%statement timeout%' THEN
            RAISE EXCEPTION 'pg_durable: transaction_mode => ''new'' launch hit statement_timeout after 30000ms (%)', v_msg USING ERRCODE = v_state;
        END IF;
        RAISE EXCEPTION '% on new transaction failed: %', p_what, v_msg USING ERRCODE = v_state;
    END;
    IF v_slot >= 0 THEN
        PERFORM pg_advisory_unlock(1346982470, v_slot);
    END IF;
    RETURN v_id;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment SECURITY DEFINER (owner of schema df). Makes the step runner of a role that holds usage on df; lets a delegate's df.grant_usage leave the grantee able to run workflows. Executable by the owner and delegates only.
CREATE OR REPLACE FUNCTION df._make_runner(p_role regrole)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF p_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = p_role::oid) THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    IF NOT has_schema_privilege(p_role, 'df', 'USAGE') THEN
        RAISE EXCEPTION 'pgflare: role "%" has no usage on schema df: a step runner is made only for a role granted usage (df.grant_usage)', p_role
            USING ERRCODE = '42501';
    END IF;
    RETURN df._install_runner(p_role);
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._mark_helper(p_helper text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    PERFORM set_config('df.non_future_helper', p_helper || E'\n' || df._helper_stamp(), true);
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._new_hook_secret()
 RETURNS text
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT 'whsec_' || rtrim(translate(encode(sha256(decode(
               replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
               'hex')), 'base64'), '+/', '-_'), '=')
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._new_id()
 RETURNS character varying
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT right(replace(gen_random_uuid()::text, '-', ''), 8)::varchar(8)
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._node_shape_error(p_node jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE
        WHEN jsonb_typeof(p_node) <> 'object'
            THEN format('invalid type: %s, expected struct Durofut', df._serde_kind(p_node))
        WHEN NOT p_node ? 'node_type'
            THEN 'missing field `node_type`'
        WHEN jsonb_typeof(p_node -> 'node_type') <> 'string'
            THEN format('invalid type: %s, expected a string', df._serde_kind(p_node -> 'node_type'))
        WHEN jsonb_typeof(p_node -> 'left_node') NOT IN ('object', 'null')
          OR jsonb_typeof(p_node -> 'right_node') NOT IN ('object', 'null')
            THEN 'Durofut children must be JSON objects'
        WHEN jsonb_typeof(p_node -> 'condition_node') NOT IN ('object', 'null')
            THEN 'condition_node must be a Durofut JSON object'
        WHEN jsonb_typeof(p_node -> 'extra_nodes') <> 'array'
            THEN format('invalid type: %s, expected a sequence', df._serde_kind(p_node -> 'extra_nodes'))
        WHEN jsonb_typeof(p_node -> 'extra_nodes') = 'array'
         AND EXISTS (SELECT 1 FROM jsonb_array_elements(p_node -> 'extra_nodes') e WHERE jsonb_typeof(e) <> 'object')
            THEN 'extra_nodes entries must be Durofut JSON objects'
        WHEN jsonb_typeof(p_node -> 'query') NOT IN ('string', 'null')
            THEN format('invalid type: %s, expected a string', df._serde_kind(p_node -> 'query'))
        WHEN jsonb_typeof(p_node -> 'result_name') NOT IN ('string', 'null')
            THEN format('invalid type: %s, expected a string', df._serde_kind(p_node -> 'result_name'))
    END
$function$

-- acl {<owner>=X/<owner>}
-- comment The 12 valid node_type values, in the order the Unknown node_type error lists them.
CREATE OR REPLACE FUNCTION df._node_types()
 RETURNS text[]
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN ARRAY['SQL', 'THEN', 'IF', 'JOIN', 'LOOP', 'BREAK', 'RACE', 'SLEEP', 'WAIT_SCHEDULE',
                 'HTTP', 'HTTP_MULTIPART', 'SIGNAL'];
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Steps of a role in flight: live leases in df.nodes plus claim transactions holding one of its slots (pg_locks).
CREATE OR REPLACE FUNCTION df._role_in_flight(p_role regrole, p_now timestamp with time zone, OUT leases integer, OUT claims integer)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    SELECT count(*)::integer INTO claims FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND l.classid = p_role::oid AND l.objid::bigint BETWEEN 1885798400 AND 1885798400 + 999;
    -- A separate statement, so its snapshot is newer than the lock table just read: a claim whose slot
    -- was gone from pg_locks has committed, and its lease (if it took one) is visible here.
    SELECT count(*)::integer INTO leases FROM df.nodes n
     WHERE n.submitted_by = p_role AND n.locked_until > p_now AND n.run_at IS NOT NULL;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). A setting as it applies to a role's sessions in this database: ALTER ROLE … IN DATABASE, ALTER ROLE, ALTER DATABASE (pg_db_role_setting, read live), then the server's value as this session sees it.
CREATE OR REPLACE FUNCTION df._role_setting(p_role oid, p_name text)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce(
        (SELECT nullif(btrim(substr(c, length(p_name) + 2)), '')
           FROM pg_db_role_setting s, unnest(s.setconfig) c
          WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
            AND s.setrole IN (0, p_role)
            AND starts_with(c, p_name || '=')
          -- PostgreSQL's precedence: role in this database, role, database.
          ORDER BY s.setrole = 0, s.setdatabase = 0
          LIMIT 1),
        nullif(btrim(current_setting(p_name, true)), ''))
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). df._role_setting as a positive integer capped at p_max, or NULL when unset or not a positive integer.
CREATE OR REPLACE FUNCTION df._role_setting_int(p_role oid, p_name text, p_max integer)
 RETURNS integer
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT least(v::numeric, p_max)::integer FROM df._role_setting(p_role, p_name) v
     WHERE v ~ '^[0-9]{1,9}$' AND v::integer >= 1
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Runs a SQL step as its owner through the owner's step runner df._run_<oid>; PF010 with df._runner_problem's reason when the owner cannot run steps.
CREATE OR REPLACE FUNCTION df._run_step(p_owner regrole, p_sql text)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_problem text := df._runner_problem(p_owner);
    v_result jsonb;
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = 'PF010';
    END IF;
    EXECUTE format('SELECT %s($1)', (SELECT runner FROM df._runners WHERE role = p_owner::oid)) INTO v_result USING p_sql;
    RETURN v_result;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Why a role's steps cannot run (gone, no LOGIN, superuser, no usage, CREATE on df, no runner), or NULL.
CREATE OR REPLACE FUNCTION df._runner_problem(p_owner regrole)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    r pg_roles%ROWTYPE;
    v_runner text;
BEGIN
    SELECT * INTO r FROM pg_roles WHERE oid = p_owner::oid;
    IF NOT FOUND THEN
        RETURN format('Failed to connect to database ''%s'' as ''%s''. Error: role "%s" does not exist',
                      current_database(), p_owner::oid, p_owner::oid);
    END IF;
    IF NOT r.rolcanlogin THEN
        RETURN format('Failed to connect to database ''%s'' as ''%s''. Error: role "%s" is not permitted to log in',
                      current_database(), r.rolname, r.rolname);
    END IF;
    IF r.rolsuper THEN
        RETURN format('pgflare: role "%s" is a superuser: its steps run only on a worker that connects as that role (no step runner is made for a superuser, it would let the worker act as one)', r.rolname);
    END IF;
    IF NOT has_schema_privilege(r.oid, 'df', 'USAGE') THEN
        RETURN format('pgflare: role "%s" has no usage on schema df (df.revoke_usage ran, or df.grant_usage never did): its steps are not run', r.rolname);
    END IF;
    IF has_schema_privilege(r.oid, 'df', 'CREATE') THEN
        RETURN format('pgflare: role "%s" has CREATE on schema df, so it could replace its own step runner: its steps are not run. Revoke CREATE ON SCHEMA df from it', r.rolname);
    END IF;
    SELECT x.runner INTO v_runner FROM df._runners x
      JOIN pg_proc p ON p.proname = substr(x.runner, 4) AND p.pronamespace = 'df'::regnamespace AND p.proowner = x.role
     WHERE x.role = r.oid;
    IF v_runner IS NULL THEN
        RETURN format('pgflare: role "%s" has no step runner: the owner of schema df (or a superuser) must run SELECT df.grant_usage(%L)', r.rolname, r.rolname);
    END IF;
    RETURN NULL;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._schedule_check_policies(p_missed text, p_overlap text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF p_missed IS NULL OR p_missed NOT IN ('skip', 'catch_up_once') THEN
        RAISE EXCEPTION 'missed must be ''skip'' or ''catch_up_once'', not %', coalesce(quote_literal(p_missed), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF p_overlap IS NULL OR p_overlap NOT IN ('skip', 'allow') THEN
        RAISE EXCEPTION 'overlap must be ''skip'' or ''allow'', not %', coalesce(quote_literal(p_overlap), 'NULL')
            USING ERRCODE = '22023';
    END IF;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._schedule_check_workflow(p_workflow text)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF p_workflow IS NULL THEN
        RAISE EXCEPTION 'workflow must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM df.workflows w WHERE w.name = p_workflow) THEN
        RAISE EXCEPTION 'workflow "%" does not exist', p_workflow USING ERRCODE = 'P0002',
            HINT = 'Define it with df.define_workflow(name, fut) first.';
    END IF;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). For a schedule due now: the fire time to start (on time or caught up per missed policy) and the next fire time.
CREATE OR REPLACE FUNCTION df._schedule_plan(p_cron text, p_tz text, p_next timestamp with time zone, p_now timestamp with time zone, p_grace interval, OUT on_time_at timestamp with time zone, OUT after_on_time timestamp with time zone, OUT due_at timestamp with time zone, OUT next_at timestamp with time zone)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    c    record;
    v_t  timestamptz;
BEGIN
    SELECT * INTO c FROM df._cron_std_parse(p_cron);
    IF p_next >= p_now - p_grace THEN
        on_time_at := p_next;
    ELSE
        v_t := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz,
                                   p_now - p_grace - interval '1 microsecond');
        IF v_t <= p_now THEN
            on_time_at := v_t;
        END IF;
    END IF;
    IF on_time_at IS NOT NULL THEN
        after_on_time := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, on_time_at);
        due_at := on_time_at;
        next_at := after_on_time;
        RETURN;
    END IF;
    due_at := p_next;
    IF p_now - p_next > interval '1 day' THEN
        v_t := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, p_now - interval '1 day');
        IF v_t IS NOT NULL AND v_t <= p_now THEN
            due_at := v_t;
        END IF;
    END IF;
    LOOP
        v_t := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, due_at);
        EXIT WHEN v_t IS NULL OR v_t > p_now;
        due_at := v_t;
    END LOOP;
    next_at := v_t;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._serde_kind(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE jsonb_typeof(p_value)
        WHEN 'null' THEN 'null'
        WHEN 'boolean' THEN format('boolean `%s`', p_value::text)
        WHEN 'number' THEN CASE WHEN p_value::text ~ '^-?[0-9]+$' THEN format('integer `%s`', p_value::text)
                                ELSE format('floating point `%s`', p_value::text) END
        WHEN 'string' THEN format('string %s', p_value::text)
        WHEN 'array' THEN 'sequence'
        ELSE 'map' END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._setting(p_name text, p_default text)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce(nullif(current_setting('pg_durable.' || p_name, true), ''), p_default)
$function$

-- acl {<owner>=X/<owner>}
-- comment SECURITY DEFINER (owner of schema df). df.signal(…, transaction_mode => 'new'): sends the signal for the calling role on a dblink loopback session (foreign server pgflare_loopback), which commits on its own.
CREATE OR REPLACE FUNCTION df._signal_new(p_instance_id text, p_name text, p_data text, p_caller text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF NOT (p_caller = session_user::text OR pg_has_role(session_user, p_caller, 'MEMBER')) THEN
        RAISE EXCEPTION 'df.signal() with transaction_mode => ''new'': current_user "%" is not a role of this session (session_user "%")', p_caller, session_user
            USING ERRCODE = '42501', HINT = 'Call it as the role itself, not from a SECURITY DEFINER function of another role.';
    END IF;
    RETURN df._loopback_run(p_caller, format('SELECT df.signal(%L, %L, %L)', p_instance_id, p_name, p_data), 'df.signal()', false);
END
$function$

-- acl {<owner>=X/<owner>}
-- comment SECURITY DEFINER (owner of schema df). df.start(…, transaction_mode => 'new'): takes a launch slot (pg_durable.max_new_transaction_starts, new_transaction_start_timeout), starts the instance for the calling role on a dblink loopback session (foreign server pgflare_loopback, the owner's user mapping), which commits on its own.
CREATE OR REPLACE FUNCTION df._start_new(p_fut text, p_label text, p_database text, p_caller text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF NOT (p_caller = session_user::text OR pg_has_role(session_user, p_caller, 'MEMBER')) THEN
        RAISE EXCEPTION 'df.start() with transaction_mode => ''new'': current_user "%" is not a role of this session (session_user "%")', p_caller, session_user
            USING ERRCODE = '42501', HINT = 'Call it as the role itself, not from a SECURITY DEFINER function of another role.';
    END IF;
    RETURN df._loopback_run(p_caller, format('SELECT df.start(%L, %L, %L)', p_fut, p_label, p_database), 'df.start()', true);
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). A role's concurrent step limit: its df.set_role_limit row, else pg_durable.max_user_connections for that role; NULL = no limit.
CREATE OR REPLACE FUNCTION df._step_limit(p_role regrole)
 RETURNS integer
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce((SELECT l.max_concurrent_steps FROM df.role_limits l WHERE l.role = p_role),
                    df._role_setting_int(p_role::oid, 'pg_durable.max_user_connections', 1000))
$function$

-- acl {<owner>=X/<owner>}
-- comment Engine (worker only). Takes a free step slot of a role with a limit (df.set_role_limit) as a transaction advisory lock; false when the role has p_limit steps in flight. Called by df._claim while it holds the node row.
CREATE OR REPLACE FUNCTION df._take_slot(p_role regrole, p_limit integer, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_key1 integer := (p_role::oid::bigint - CASE WHEN p_role::oid::bigint >= 2147483648 THEN 4294967296 ELSE 0 END)::integer;
    v_slot integer;
    v_got  boolean := false;
    v      record;
BEGIN
    FOR v_slot IN 0 .. p_limit - 1 LOOP
        IF pg_try_advisory_xact_lock(v_key1, 1885798400 + v_slot) THEN
            v_got := true;
            EXIT;
        END IF;
    END LOOP;
    IF NOT v_got THEN
        RETURN false;  -- p_limit claim transactions already run
    END IF;
    -- Slots bound the claim transactions; leases take the rest of the limit. The common case, no live
    -- lease of this role, needs no look at pg_locks.
    IF NOT EXISTS (SELECT 1 FROM df.nodes n
                    WHERE n.submitted_by = p_role AND n.locked_until > p_now AND n.run_at IS NOT NULL) THEN
        RETURN true;
    END IF;
    v := df._role_in_flight(p_role, p_now);
    -- claims includes our own slot. Two claims checking at once may both see each other and both give
    -- up (the role's row waits for the next claim): never more than the limit.
    RETURN v.claims + v.leases <= p_limit;
END
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._tz_canonical(p_tz text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_name text;
BEGIN
    IF p_tz IS NULL THEN
        RAISE EXCEPTION 'timezone must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT z.name INTO v_name FROM pg_catalog.pg_timezone_names z
     WHERE lower(z.name) = lower(p_tz) ORDER BY z.name = p_tz DESC, z.name LIMIT 1;
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'unknown time zone ''%''', p_tz USING ERRCODE = '22023',
            HINT = 'Use an IANA time zone name such as ''UTC'', ''Europe/Berlin'' or ''America/New_York'' (see pg_timezone_names).';
    END IF;
    RETURN v_name;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment The functions df.grant_usage grants EXECUTE on: the public API, http functions with include_http, metrics/grant_usage/revoke_usage with with_grant, and the _ helpers those call as the invoker (transitively), plus the REST API's three. Engine internals are never among them.
CREATE OR REPLACE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean)
 RETURNS SETOF regprocedure
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    WITH RECURSIVE fns AS (
        SELECT p.oid, p.proname::text AS name FROM pg_proc p WHERE p.pronamespace = 'df'::regnamespace
    ), calls AS (
        -- Who calls whom: every df._name a SECURITY INVOKER body mentions, read once per function.
        SELECT DISTINCT p.oid AS caller, m[1] AS callee
          FROM pg_proc p, regexp_matches(p.prosrc, 'df\.(_[a-z0-9_]+)', 'g') AS m
         WHERE p.pronamespace = 'df'::regnamespace AND NOT p.prosecdef
    ), granted(oid) AS (
        SELECT f.oid FROM fns f
         WHERE (f.name !~ '^_' AND has_function_privilege('public', f.oid, 'EXECUTE'))
            OR (p_include_http AND f.name IN ('http', 'http_multipart'))
            OR (p_with_grant AND f.name IN ('metrics', 'grant_usage', 'revoke_usage'))
            OR f.name IN ('_eval_dsl', '_api_token_role', '_hook_for_delivery')
        UNION
        SELECT f.oid FROM granted g JOIN calls c ON c.caller = g.oid JOIN fns f ON f.name = c.callee
    )
    SELECT oid::regprocedure FROM granted
$function$

-- acl {<owner>=X/<owner>}
CREATE OR REPLACE FUNCTION df._with_options(p_step text, p_patch jsonb)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_node df._envelope_parts := df._ensure_fields(p_step);
BEGIN
    RETURN df._envelope(v_node.node_type, v_node.left_node, v_node.right_node, v_node.condition_node,
                        v_node.extra_nodes, v_node.query, v_node.result_name,
                        df._json_compact(coalesce(v_node.options::jsonb, '{}'::jsonb) || p_patch));
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Changes a schedule of the caller's (NULL arguments keep their value); returns its next fire time.
CREATE OR REPLACE FUNCTION df.alter_schedule(name text, cron text DEFAULT NULL::text, timezone text DEFAULT NULL::text, input jsonb DEFAULT NULL::jsonb, missed text DEFAULT NULL::text, overlap text DEFAULT NULL::text, workflow text DEFAULT NULL::text)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_variable
DECLARE
    s      df.schedules%ROWTYPE;
    v_tz   text;
    v_cron text;
    v_next timestamptz;
BEGIN
    SELECT * INTO s FROM df.schedules t WHERE t.name = alter_schedule.name AND t.owner = quote_ident(current_user)::regrole FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    v_tz := CASE WHEN timezone IS NULL THEN s.timezone ELSE df._tz_canonical(timezone) END;
    v_cron := coalesce(btrim(cron), s.cron);
    v_next := CASE WHEN cron IS NULL AND timezone IS NULL THEN s.next_fire_at
                   ELSE df._cron_next(v_cron, v_tz, now()) END;
    PERFORM df._schedule_check_policies(coalesce(missed, s.missed), coalesce(overlap, s.overlap));
    IF workflow IS NOT NULL THEN
        PERFORM df._schedule_check_workflow(workflow);
    END IF;
    UPDATE df.schedules t
       SET cron = v_cron, timezone = v_tz, next_fire_at = v_next,
           input = CASE WHEN input IS NULL THEN t.input WHEN jsonb_typeof(input) = 'null' THEN NULL ELSE input END,
           missed = coalesce(missed, t.missed), overlap = coalesce(overlap, t.overlap),
           workflow = coalesce(workflow, t.workflow),
           last_error = NULL, last_error_at = NULL, updated_at = now()
     WHERE t.id = s.id;
    RETURN v_next;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: names a step's result, for $name.column substitution in later steps.
CREATE OR REPLACE FUNCTION df."as"(fut text, name text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_node df._envelope_parts;
BEGIN
    IF name = '' THEN
        RAISE EXCEPTION 'df.as: result name cannot be empty' USING ERRCODE = '22023';
    ELSIF name !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
        RAISE EXCEPTION 'df.as: result name ''%'' is not a valid identifier — must match [a-zA-Z_][a-zA-Z0-9_]*', name
            USING ERRCODE = '22023';
    END IF;
    v_node := df._ensure_fields(fut);
    RETURN df._envelope(v_node.node_type, v_node.left_node, v_node.right_node, v_node.condition_node,
                        v_node.extra_nodes, v_node.query, name, v_node.options);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL operator |=>: df.as.
CREATE OR REPLACE FUNCTION df.as_op(fut text, name text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df."as"(fut, name);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Waits up to timeout_seconds for an instance of the caller's to finish; returns its status.
CREATE OR REPLACE FUNCTION df.await_instance(instance_id text, timeout_seconds integer DEFAULT 30)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_status   text;
    v_attempts integer := 0;
    v_max      integer;
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.await_instance() cannot be called inside a workflow - it would block a worker thread (and self-deadlock if waiting on the current instance). Use df.signal() and df.wait_for_signal() for cross-workflow coordination.'
            USING ERRCODE = '55000';
    END IF;
    IF await_instance.timeout_seconds <= 0 THEN
        RAISE EXCEPTION 'Timeout must be positive' USING ERRCODE = '22023';
    END IF;
    v_max := least(await_instance.timeout_seconds::bigint * 10, 2147483647)::integer;

    LOOP
        SELECT lower(i.status) INTO v_status FROM df.instances AS i WHERE i.id = await_instance.instance_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Instance not found: %', await_instance.instance_id USING ERRCODE = 'P0002';
        END IF;
        IF v_status IN ('completed', 'failed', 'cancelled') THEN
            PERFORM df._mark_helper('df.await_instance');
            RETURN v_status;
        END IF;
        v_attempts := v_attempts + 1;
        IF v_attempts >= v_max THEN
            RAISE EXCEPTION 'Timeout after %s waiting for instance % (status: %). Check if background worker is running.',
                await_instance.timeout_seconds, await_instance.instance_id, coalesce(v_status, 'unknown')
                USING ERRCODE = '57014';
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: leaves the innermost loop, with an optional value.
CREATE OR REPLACE FUNCTION df.break(value text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('BREAK', p_query => '{"break_value":' || coalesce(to_json(value)::text, 'null') || '}');
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Cancels an instance of the caller's: withdraws its queued work and marks it cancelled.
CREATE OR REPLACE FUNCTION df.cancel(instance_id text, reason text DEFAULT 'Cancelled by user'::text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_status text;
BEGIN
    -- Lock the row so a concurrent checkpoint (which also locks it, DESIGN 7) sees either the old
    -- or the new status, never a half-applied cancel.
    SELECT i.status INTO v_status FROM df.instances AS i WHERE i.id = cancel.instance_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', cancel.instance_id
            USING ERRCODE = 'P0002';
    END IF;

    -- A terminal instance stays as it is (test 22): the call still reports success.
    IF v_status NOT IN ('completed', 'failed', 'cancelled') THEN
        UPDATE df.instances AS i SET status = 'cancelled', updated_at = now()
        WHERE i.id = cancel.instance_id;
        v_status := 'cancelled';
    END IF;

    -- Withdraw queued work so no worker claims another step of a cancelled instance; steps already
    -- running finish or are abandoned at their checkpoint (§3.12: they keep their physical status).
    IF v_status = 'cancelled' THEN
        -- SKIP LOCKED: this transaction holds the instance row, so it must never wait for a node row
        -- (DESIGN 7); a step that holds one learns of the cancel at its checkpoint and withdraws itself.
        UPDATE df.nodes AS n SET run_at = NULL
        WHERE (n.instance_id, n.id) IN (
            SELECT q.instance_id, q.id FROM df.nodes AS q
             WHERE q.instance_id = cancel.instance_id AND q.run_at IS NOT NULL
               FOR UPDATE SKIP LOCKED);
    END IF;

    RETURN format('Instance %s cancelled: %s', cancel.instance_id, cancel.reason);
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Removes every variable of the caller's.
CREATE OR REPLACE FUNCTION df.clearvars()
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.clearvars() cannot be called inside a workflow - manage variables before starting the workflow'
            USING ERRCODE = '55000';
    END IF;
    DELETE FROM df.vars AS v WHERE v.owner = quote_ident(current_user)::regrole;
    PERFORM df._mark_helper('df.clearvars');
    RETURN 'OK';
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Makes a REST API bearer token for a role and returns it (shown only once; only its hash is stored).
CREATE OR REPLACE FUNCTION df.create_api_token(name text, role text DEFAULT CURRENT_USER)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_role  regrole;
    v_token text;
BEGIN
    IF create_api_token.name IS NULL OR btrim(create_api_token.name) = '' OR length(create_api_token.name) > 200 THEN
        RAISE EXCEPTION 'token name must be 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    v_role := df._api_token_target(create_api_token.role);
    v_token := 'pgf_' || rtrim(translate(encode(sha256(decode(
                   replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
                   'hex')), 'base64'), '+/', '-_'), '=');
    BEGIN
        INSERT INTO df._api_tokens AS t (name, token_hash, role)
        VALUES (create_api_token.name, encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), v_role);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'an active API token named "%" already exists for role %', create_api_token.name, v_role
            USING ERRCODE = '23505';
    END;
    RETURN v_token;
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Creates a webhook that starts a named workflow on each verified delivery (HMAC signature); returns its secret.
CREATE OR REPLACE FUNCTION df.create_hook(name text, workflow text, scheme text, secret text DEFAULT NULL::text, tolerance_seconds integer DEFAULT 300, max_body_bytes integer DEFAULT 1048576)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_secret text := coalesce(create_hook.secret, df._new_hook_secret());
BEGIN
    IF create_hook.name IS NULL OR create_hook.workflow IS NULL OR create_hook.scheme IS NULL
       OR create_hook.tolerance_seconds IS NULL OR create_hook.max_body_bytes IS NULL THEN
        RAISE EXCEPTION 'df.create_hook(): name, workflow, scheme, tolerance_seconds and max_body_bytes must not be NULL'
            USING ERRCODE = '22004';
    END IF;
    PERFORM df._hook_check(create_hook.name, create_hook.scheme, create_hook.secret,
                           create_hook.tolerance_seconds, create_hook.max_body_bytes);
    -- Only the caller's own workflows are visible (row-level security), so this is also the owner check.
    IF NOT EXISTS (SELECT 1 FROM df.workflows AS w WHERE w.name = create_hook.workflow) THEN
        RAISE EXCEPTION 'workflow "%" does not exist', create_hook.workflow
            USING ERRCODE = 'P0002', HINT = 'Define it first with df.define_workflow(name, workflow).';
    END IF;
    BEGIN
        INSERT INTO df._hooks (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes)
        VALUES (create_hook.name, create_hook.workflow, create_hook.scheme, v_secret,
                create_hook.tolerance_seconds, create_hook.max_body_bytes);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'a webhook named "%" already exists', create_hook.name
            USING ERRCODE = '23505', HINT = 'Webhook names are global to the database: they are URLs.';
    END;
    RETURN v_secret;
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Starts a named workflow on a cron schedule in a time zone, with missed and overlap policies.
CREATE OR REPLACE FUNCTION df.create_schedule(name text, workflow text, cron text, timezone text DEFAULT 'UTC'::text, input jsonb DEFAULT NULL::jsonb, missed text DEFAULT 'skip'::text, overlap text DEFAULT 'skip'::text)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_tz   text;
    v_next timestamptz;
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' THEN
        RAISE EXCEPTION 'df.create_schedule(): invalid schedule name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'A name is 1-128 characters: letters, digits, and _ . : - (not first).';
    END IF;
    v_tz := df._tz_canonical(timezone);
    v_next := df._cron_next(cron, v_tz, now());
    PERFORM df._schedule_check_policies(missed, overlap);
    PERFORM df._schedule_check_workflow(workflow);
    BEGIN
        INSERT INTO df.schedules (name, workflow, cron, timezone, input, missed, overlap, next_fire_at)
        VALUES (create_schedule.name, create_schedule.workflow, btrim(create_schedule.cron), v_tz,
                create_schedule.input, create_schedule.missed, create_schedule.overlap, v_next);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'schedule "%" already exists', name USING ERRCODE = '23505',
            HINT = 'Change it with df.alter_schedule, or drop it first.';
    END;
    RETURN v_next;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The next time a cron expression fires in a time zone after a given instant.
CREATE OR REPLACE FUNCTION df.cron_next_fire(cron text, timezone text DEFAULT 'UTC'::text, after timestamp with time zone DEFAULT now())
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._cron_next(cron, df._tz_canonical(timezone), after);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Validates a graph and stores it as the next version of a named workflow of the caller's; returns the version.
CREATE OR REPLACE FUNCTION df.define_workflow(name text, fut text, description text DEFAULT NULL::text)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Removes a webhook of the caller's.
CREATE OR REPLACE FUNCTION df.drop_hook(name text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_count integer;
BEGIN
    DELETE FROM df._hooks AS h WHERE h.name = drop_hook.name;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count = 0 THEN
        RAISE EXCEPTION 'no webhook named "%"', drop_hook.name USING ERRCODE = 'P0002';
    END IF;
    RETURN 'OK';
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Removes a schedule of the caller's.
CREATE OR REPLACE FUNCTION df.drop_schedule(name text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    DELETE FROM df.schedules t WHERE t.name = drop_schedule.name AND t.owner = quote_ident(current_user)::regrole;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Removes every version of a named workflow; running instances are unaffected.
CREATE OR REPLACE FUNCTION df.drop_workflow(name text)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Renders a workflow graph (DSL text, an envelope, or an instance id with per-node status) as a tree.
CREATE OR REPLACE FUNCTION df.explain(input text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_input  text := btrim(input, E' \t\n\r\f\v');
    v_json   jsonb;
    v_result text;
    v_root   text;
    v_label  text;
    v_status text;
    v_output text;
    v_nodes  jsonb;
    v_upper  text;
BEGIN
    -- ===== instance mode: exactly 8 hex characters =====
    IF v_input ~ '^[0-9A-Fa-f]{8}$' THEN
        SELECT i.root_node, i.label, i.status, i.output INTO v_root, v_label, v_status, v_output
          FROM df.instances i WHERE i.id = v_input;
        IF NOT FOUND THEN
            RETURN format('Instance ''%s'' not found', v_input);
        END IF;
        -- Markers come from inferred_status (§5.2), so untaken arms and abandoned branches read ⊘.
        SELECT jsonb_object_agg(n.node_id, jsonb_build_object(
                   't', n.node_type, 'q', n.query, 'n', n.result_name, 'l', n.left_node, 'r', n.right_node,
                   'm', CASE n.inferred_status WHEN 'completed' THEN ' ✓' WHEN 'failed' THEN ' ✗'
                            WHEN 'running' THEN ' ⏳' WHEN 'pending' THEN ' ○' WHEN 'skipped' THEN ' ⊘' END))
          INTO v_nodes
          FROM df.instance_nodes(v_input) n;
        IF v_nodes IS NULL THEN
            RETURN format('No nodes found for instance ''%s''', v_input);
        END IF;
        RETURN 'Instance: ' || v_input || coalesce(' (' || v_label || ')', '') || E'\n'
            || 'Status:   '
            || CASE WHEN lower(v_status) IN ('completed', 'continuedasnew') THEN '✓'
                    WHEN lower(v_status) IN ('failed', 'canceled', 'cancelled') THEN '✗'
                    WHEN lower(v_status) = 'running' THEN '⏳' ELSE '○' END
            || ' ' || v_status || E'\n'
            || coalesce('Output:   ' || df._explain_cut(v_output, 60, 57) || E'\n', '')
            || E'\n'
            || df._explain_tree(v_root, v_nodes);
    END IF;

    -- ===== dry run 1: an envelope =====
    v_json := df._explain_json(v_input);
    IF v_json IS NOT NULL AND df._node_shape_error(v_json) IS NULL THEN
        RETURN df._explain_graph(v_input);
    END IF;

    -- ===== dry run 2: a DSL expression, evaluated as the caller =====
    IF strpos(v_input, '~>') > 0 OR strpos(v_input, '|=>') > 0 OR strpos(v_input, '?>') > 0
       OR strpos(v_input, '!>') > 0 OR strpos(v_input, '@>') > 0 OR strpos(v_input, 'df.') > 0 THEN
        -- The operators live in the migration's operator schema; this SET LOCAL ends with the function.
        PERFORM set_config('search_path', 'pg_catalog, df, "public", pg_temp', true);
        BEGIN
            EXECUTE 'SELECT ' || v_input INTO v_result;
        EXCEPTION WHEN OTHERS THEN
            RETURN 'Failed to evaluate expression: ' || SQLERRM;
        END;
        IF v_result IS NULL THEN
            RETURN 'Expression returned NULL';
        END IF;
        BEGIN
            v_json := v_result::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            RETURN 'Failed to parse Durofut JSON: ' || SQLERRM;
        END;
        IF df._node_shape_error(v_json) IS NOT NULL THEN
            RETURN 'Failed to parse Durofut JSON: ' || df._node_shape_error(v_json);
        END IF;
        RETURN df._explain_graph(v_result);
    END IF;

    -- ===== dry run 3: plain SQL becomes one SQL node =====
    v_upper := upper(v_input);
    IF v_upper ~ '^(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|CALL|DO|TRUNCATE|GRANT|REVOKE|EXPLAIN) '
       OR v_upper ~ E'^(SELECT|INSERT|UPDATE|DELETE|WITH)\n' THEN
        RETURN df._explain_tree('n1', jsonb_build_object('n1', jsonb_build_object('t', 'SQL', 'q', v_input)));
    END IF;

    RETURN E'Cannot explain input: not a valid Durofut JSON, instance ID, SQL statement, or DSL expression.\nHint: DSL expressions use df.*() functions and operators like ~>, |=>, &, |.';
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment A variable of the caller's, or NULL.
CREATE OR REPLACE FUNCTION df.getvar(name text)
 RETURNS text
 LANGUAGE sql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT v.value FROM df.vars AS v
    WHERE v.name = $1 AND v.owner = quote_ident(current_user)::regrole
$function$

-- acl {<owner>=X/<owner>}
-- comment Grants a role what it needs to use pgflare (schema usage, the API's functions, column-level table rights) and makes its step runner. include_http adds df.http/df.http_multipart; with_grant lets the role grant the same to others (a delegate), passing on only what it holds with grant option.
CREATE OR REPLACE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
    v_fn regprocedure;
    v_refused text;
    v_why text;
BEGIN
    IF to_regrole(quote_ident(p_role)) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    -- The caller passes on what it holds with grant option (the owner holds everything). What PUBLIC may
    -- execute anyway needs no passing on; anything else is refused before anything is granted.
    SELECT string_agg(f::text, ', ' ORDER BY f::text) INTO v_refused FROM df._usage_functions(include_http, with_grant) f
     WHERE NOT has_function_privilege(current_user, f, 'EXECUTE WITH GRANT OPTION') AND NOT has_function_privilege('public', f, 'EXECUTE');
    IF v_refused IS NOT NULL THEN
        RAISE EXCEPTION 'pgflare: "%" may not grant EXECUTE on %: it does not hold it with grant option (ask the owner of schema df%)',
            current_user, v_refused, CASE WHEN include_http OR with_grant THEN ', or grant without include_http/with_grant' ELSE '' END
            USING ERRCODE = '42501';
    END IF;
    FOR v_fn IN SELECT * FROM df._usage_functions(include_http, with_grant) f
                 WHERE has_function_privilege(current_user, f, 'EXECUTE WITH GRANT OPTION') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I%s', v_fn, p_role, v_opt);
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA df TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, UPDATE (status, updated_at, input), INSERT (id, label, root_node, submitted_by, database, vars, input) ON df.instances TO %I%s', p_role, v_opt);
    -- UPDATE (run_at): df.cancel withdraws queued work, df.signal wakes a waiting node. The engine runs
    -- only leaves it activated itself (status running, a live scope), so a hand-set run_at does nothing.
    EXECUTE format('GRANT SELECT, INSERT (id, instance_id, node_type, query, result_name, left_node, right_node, submitted_by, database, run_at, options), UPDATE (run_at) ON df.nodes TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (instance_id, signal_name, payload, submitted_by) ON df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.scopes, df.events TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (name, version, graph, description), DELETE ON df.workflows TO %I%s', p_role, v_opt);
    -- Schedules: a role writes only what the schedule functions write; fires and last_* are the worker's.
    EXECUTE format('GRANT SELECT, DELETE, INSERT (name, workflow, cron, timezone, input, missed, overlap, next_fire_at), UPDATE (workflow, cron, timezone, input, missed, overlap, paused, next_fire_at, last_error, last_error_at, updated_at) ON df.schedules TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.schedule_fires TO %I%s', p_role, v_opt);
    -- Webhooks: `secret` is INSERT/UPDATE only, nobody but the table owner reads it back.
    EXECUTE format('GRANT SELECT (id, name, owner, workflow, scheme, tolerance_seconds, max_body_bytes, created_at, secret_rotated_at), '
                   'INSERT (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes), UPDATE (secret, secret_rotated_at), DELETE '
                   'ON df._hooks TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (hook_id, delivery_id, instance_id), DELETE ON df.hook_deliveries TO %I%s', p_role, v_opt);
    RAISE NOTICE 'pg_durable: granted df usage privileges to "%"', p_role;
    -- The step runner, made as the owner of schema df (the caller may be a delegate).
    v_why := df._make_runner(quote_ident(p_role)::regrole);
    IF v_why IS NOT NULL THEN
        RAISE WARNING 'pgflare: no step runner for "%": %; its SQL steps will not run until the owner of schema df runs df.grant_usage(%)',
            p_role, v_why, quote_literal(p_role);
    END IF;
END
$function$

-- acl {<owner>=X/<owner>}
-- comment DSL: an HTTP request step, run by the worker under the egress policy; revoked from PUBLIC, granted with include_http.
CREATE OR REPLACE FUNCTION df.http(url text, method text DEFAULT 'POST'::text, body text DEFAULT NULL::text, headers jsonb DEFAULT NULL::jsonb, timeout_seconds integer DEFAULT 30)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_method text := df._http_check('df.http()', url, method, ARRAY['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
                                     timeout_seconds);
BEGIN
    RETURN df._envelope('HTTP', p_query => '{"url":' || to_json(url)::text
        || ',"method":' || to_json(v_method)::text
        || ',"body":' || coalesce(to_json(body)::text, 'null')
        || ',"headers":' || coalesce(df._json_compact(headers), 'null')
        || ',"timeout_seconds":' || timeout_seconds || '}');
END
$function$

-- acl {<owner>=X/<owner>}
-- comment DSL: a multipart/form-data HTTP request step; revoked from PUBLIC, granted with include_http.
CREATE OR REPLACE FUNCTION df.http_multipart(url text, method text DEFAULT 'POST'::text, parts jsonb DEFAULT NULL::jsonb, headers jsonb DEFAULT NULL::jsonb, timeout_seconds integer DEFAULT 30)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_method text := df._http_check('df.http_multipart()', url, method, ARRAY['POST', 'PUT', 'PATCH'],
                                     timeout_seconds);
BEGIN
    IF parts IS NULL THEN
        RAISE EXCEPTION 'parts is required and cannot be NULL' USING ERRCODE = '22023';
    ELSIF jsonb_typeof(parts) <> 'array' THEN
        RAISE EXCEPTION 'parts must be a JSON array of part objects' USING ERRCODE = '22023';
    ELSIF jsonb_array_length(parts) = 0 THEN
        RAISE EXCEPTION 'parts must contain at least one part' USING ERRCODE = '22023';
    END IF;
    RETURN df._envelope('HTTP_MULTIPART', p_query => '{"url":' || to_json(url)::text
        || ',"method":' || to_json(v_method)::text
        || ',"parts":' || df._json_compact(parts)
        || ',"headers":' || coalesce(df._json_compact(headers), 'null')
        || ',"timeout_seconds":' || timeout_seconds || '}');
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: runs the condition step, then then_branch or else_branch by its result.
CREATE OR REPLACE FUNCTION df.if(condition text, then_branch text, else_branch text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_condition text := df._ensure(condition);
    v_then text := df._ensure(then_branch);
    v_else text := df._ensure(else_branch);
BEGIN
    RETURN df._envelope('IF', v_then, v_else, v_condition);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL operator !>: adds the else-branch to a ?> IF.
CREATE OR REPLACE FUNCTION df.if_else_op(partial_if text, else_branch text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_partial jsonb;
BEGIN
    -- Non-JSON text cannot be a partial if; say so instead of failing on the jsonb cast.
    IF ltrim(partial_if, E' \t\n\r') LIKE '{%' THEN
        v_partial := partial_if::jsonb;
    END IF;
    IF v_partial ->> '_partial_if' IS NULL THEN
        RAISE EXCEPTION 'Invalid if-then-else: left side of !> must be a ?> expression' USING ERRCODE = '22023';
    END IF;
    RETURN df."if"(v_partial ->> 'condition', v_partial ->> 'then_branch', else_branch);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: then_branch if the named result has rows, else else_branch.
CREATE OR REPLACE FUNCTION df.if_rows(result_name text, then_branch text, else_branch text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('IF', df._ensure(then_branch), df._ensure(else_branch),
                        p_query => '{"condition_type":"result_has_rows","result_name":' || to_json(result_name)::text || '}');
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL operator ?>: the condition and then-branch of an IF, completed by !>.
CREATE OR REPLACE FUNCTION df.if_then_op(condition text, then_branch text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_set text := current_setting('pgflare.max_graph_bytes', true);
    v_max bigint := CASE WHEN v_set ~ '^\s*[0-9]{1,12}\s*$' AND btrim(v_set)::bigint > 0 THEN btrim(v_set)::bigint ELSE 8388608 END;
    v_bytes bigint := coalesce(octet_length(condition), 0) + coalesce(octet_length(then_branch), 0);
BEGIN
    IF v_bytes > v_max THEN
        RAISE EXCEPTION 'Workflow too large: the operands of ?> total % bytes, over the limit of % bytes (pgflare.max_graph_bytes)',
            v_bytes, v_max
            USING ERRCODE = '54000', HINT = 'A chain of ?> without !> doubles in size at every level; close each ?> with !>.';
    END IF;
    RETURN jsonb_build_object('_partial_if', true, 'condition', condition, 'then_branch', then_branch)::text;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The event history of one instance (activations, completions, failures, retries).
CREATE OR REPLACE FUNCTION df.instance_events(instance_id text)
 RETURNS TABLE(event_id bigint, node_id text, kind text, attempt integer, detail text, created_at timestamp with time zone)
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT e.id, e.node_id::text, e.kind, e.attempt, e.detail, e.created_at
      FROM df.events e WHERE e.instance_id = instance_events.instance_id
     ORDER BY e.id
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The executions (runs of steps) of one instance, newest first.
CREATE OR REPLACE FUNCTION df.instance_executions(instance_id text, limit_count integer DEFAULT 5)
 RETURNS TABLE(execution_id bigint, status text, event_count bigint, duration_ms bigint, output text)
 LANGUAGE plpgsql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_limit integer;
BEGIN
    IF instance_executions.limit_count < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = '22023';
    END IF;
    v_limit := least(instance_executions.limit_count, 10000);

    RETURN QUERY
        WITH inst AS (
            SELECT i.id, i.status, i.generation, i.output, i.created_at, i.completed_at
            FROM df.instances AS i WHERE i.id = instance_executions.instance_id
        ), stamps AS (
            SELECT df._i64_or_null(split_part(n.status_details ->> 'execution_id', '::', 2)) AS root_gen
            FROM df.nodes AS n
            WHERE n.instance_id = instance_executions.instance_id
              AND jsonb_typeof(n.status_details -> 'execution_id') = 'string'
        )
        SELECT g::bigint,
               CASE WHEN g < inst.generation THEN 'ContinuedAsNew'
                    ELSE CASE inst.status WHEN 'running' THEN 'Running'
                                          WHEN 'completed' THEN 'Completed'
                                          WHEN 'failed' THEN 'Failed'
                                          WHEN 'cancelled' THEN 'Terminated'
                                          ELSE 'Pending' END
               END,
               (SELECT count(*) FROM stamps AS s WHERE s.root_gen = g),
               CASE WHEN g = inst.generation AND inst.generation = 1 AND inst.completed_at IS NOT NULL
                    THEN floor(extract(epoch FROM inst.completed_at - inst.created_at) * 1000)::bigint
               END,
               CASE WHEN g = inst.generation THEN inst.output END
        FROM inst, generate_series(inst.generation, 1, -1) AS g
        ORDER BY g DESC
        LIMIT v_limit;
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment One instance's summary: id, label, status (as df.status reports it), generation, output.
CREATE OR REPLACE FUNCTION df.instance_info(instance_id text)
 RETURNS TABLE(instance_id text, label text, function_name text, function_version text, current_execution_id bigint, status text, output text)
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT i.id::text, i.label, 'pg_durable::orchestration::execute-function-graph'::text,
           '1.0.0'::text, i.generation::bigint,
           CASE WHEN i.status = 'pending' AND EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2
                    AND l.objid = hashtext(i.id)::oid AND l.granted
                    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                THEN 'running' ELSE i.status END, i.output
    FROM df.instances AS i
    WHERE i.id = $1
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The nodes of one instance, with their status and results.
CREATE OR REPLACE FUNCTION df.instance_nodes(instance_id_param text)
 RETURNS TABLE(node_id text, node_type text, query text, result_name text, left_node text, right_node text, status text, result text, status_details text, inferred_status text, inferred_status_from_ancestor_id text, updated_at timestamp with time zone)
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT n.id::text, n.node_type, n.query, n.result_name, n.left_node::text, n.right_node::text,
           n.status, n.result::text, n.status_details::text,
           coalesce(s.inferred_status, n.status, 'pending'), s.inferred_status_from_ancestor_id,
           n.updated_at
    FROM df.nodes AS n
    LEFT JOIN df._inferred_status($1) AS s ON s.node_id = n.id
    WHERE n.instance_id = $1
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The nodes of one instance, limited to the last N executions.
CREATE OR REPLACE FUNCTION df.instance_nodes(instance_id_param text, _last_n_executions integer)
 RETURNS TABLE(execution_id bigint, node_id text, node_type text, query text, result_name text, left_node text, right_node text, status text, result text, updated_at timestamp with time zone)
 LANGUAGE sql
 STABLE STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT 1::bigint, n.id::text, n.node_type, n.query, n.result_name, n.left_node::text,
           n.right_node::text, n.status, n.result::text, n.updated_at
    FROM df.nodes AS n
    WHERE n.instance_id = $1
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL (operator &): runs a and b in parallel and waits for both.
CREATE OR REPLACE FUNCTION df."join"(a text, b text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('JOIN', df._ensure(a), df._ensure(b));
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: runs three branches in parallel and waits for all.
CREATE OR REPLACE FUNCTION df.join3(a text, b text, c text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('JOIN', df._ensure(a), df._ensure(b), p_extra_nodes => ARRAY[df._ensure(c)]);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The caller's webhooks (never their secrets).
CREATE OR REPLACE FUNCTION df.list_hooks()
 RETURNS TABLE(name text, workflow text, scheme text, tolerance_seconds integer, max_body_bytes integer, created_at timestamp with time zone, secret_rotated_at timestamp with time zone, deliveries bigint, last_delivery_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT h.name, h.workflow, h.scheme, h.tolerance_seconds, h.max_body_bytes, h.created_at, h.secret_rotated_at,
           (SELECT count(*) FROM df.hook_deliveries AS d WHERE d.hook_id = h.id),
           (SELECT max(d.received_at) FROM df.hook_deliveries AS d WHERE d.hook_id = h.id)
      FROM df._hooks AS h
     ORDER BY h.name
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The caller's instances with this label, newest first, paginated like df.list_instances(limit_count, status_filter, after_cursor): the form that df.list_instances(label => ...) resolves to.
CREATE OR REPLACE FUNCTION df.list_instances(label df.instance_label, limit_count integer DEFAULT 100, status_filter text DEFAULT NULL::text, after_cursor text DEFAULT NULL::text)
 RETURNS TABLE(instance_id text, label text, function_name text, status text, execution_count bigint, output text, created_at timestamp with time zone, completed_at timestamp with time zone, next_cursor text)
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT * FROM df.list_instances($3, $2, $1::text, $4)
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The caller's instances, newest first, optionally by status (a pending instance whose first step is running is listed as running, as by df.status).
CREATE OR REPLACE FUNCTION df.list_instances(status_filter text DEFAULT NULL::text, limit_count integer DEFAULT 100)
 RETURNS TABLE(instance_id text, label text, function_name text, status text, execution_count bigint, output text)
 LANGUAGE sql
 STABLE ROWS 100
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT l.instance_id, l.label, l.function_name, l.status, l.execution_count, l.output
      FROM df.list_instances($1, $2, NULL::text, NULL::text) AS l
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The caller's instances, newest first, by status and label, paged with a cursor (status as df.status reports it).
CREATE OR REPLACE FUNCTION df.list_instances(status_filter text, limit_count integer, label_filter text, after_cursor text DEFAULT NULL::text)
 RETURNS TABLE(instance_id text, label text, function_name text, status text, execution_count bigint, output text, created_at timestamp with time zone, completed_at timestamp with time zone, next_cursor text)
 LANGUAGE plpgsql
 STABLE ROWS 100
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_limit integer := df._list_limit(list_instances.limit_count);
    v_ts    timestamptz;
    v_id    text;
    -- Held by a claim of the instance's first step (df.status's 'running' for a pending row). A hashed
    -- subplan: built the first time a pending row asks, once per call.
    v_live  text := 'hashtext(i.id)::oid IN (SELECT l.objid FROM pg_locks l
                      WHERE l.locktype = ''advisory'' AND l.classid = 1885824620::oid AND l.objsubid = 2 AND l.granted
                        AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))';
    v_where text := '';
    v_cols  text := 'i.id, i.label, %s AS status, i.generation, i.output, i.created_at, i.completed_at';
    v_order text := ' ORDER BY i.created_at DESC, i.id LIMIT $5';
    v_page  text;
    v_ranges text[] := ARRAY[''];
    v_base  text[];
    v_parts text[];
BEGIN
    IF list_instances.after_cursor IS NOT NULL THEN
        SELECT c.o_created_at, c.o_id INTO v_ts, v_id FROM df._list_cursor_decode(list_instances.after_cursor) AS c;
    END IF;
    IF list_instances.label_filter IS NOT NULL THEN
        v_where := v_where || ' AND i.label = $2';
    END IF;
    IF v_ts IS NOT NULL THEN
        v_ranges := ARRAY[' AND i.created_at = $3 AND i.id > $4', ' AND i.created_at < $3'];
    END IF;

    -- The selects of the page, one per range and per stored status it reads.
    IF list_instances.status_filter IS NULL THEN
        v_base := ARRAY['SELECT ' || format(v_cols, 'CASE WHEN i.status = ''pending'' AND ' || v_live || ' THEN ''running'' ELSE i.status END')
                        || ' FROM df.instances AS i WHERE i.created_at IS NOT NULL'];
    ELSIF list_instances.status_filter = 'running' THEN
        v_base := ARRAY['SELECT ' || format(v_cols, '''running''') || ' FROM df.instances AS i WHERE i.status = ''running''',
                        'SELECT ' || format(v_cols, '''running''') || ' FROM df.instances AS i WHERE i.status = ''pending'' AND ' || v_live];
    ELSIF list_instances.status_filter = 'pending' THEN
        v_base := ARRAY['SELECT ' || format(v_cols, '''pending''') || ' FROM df.instances AS i WHERE i.status = ''pending'' AND NOT ' || v_live];
    ELSE
        v_base := ARRAY['SELECT ' || format(v_cols, 'i.status') || ' FROM df.instances AS i WHERE i.status = $1'];
    END IF;
    SELECT array_agg('(' || b || v_where || r || v_order || ')') INTO v_parts
      FROM unnest(v_base) AS b CROSS JOIN unnest(v_ranges) AS r;
    v_page := array_to_string(v_parts, ' UNION ALL ');
    IF cardinality(v_parts) > 1 THEN
        v_page := v_page || ' ORDER BY created_at DESC, id LIMIT $5';
    END IF;

    -- One extra row ($5 = limit + 1) tells whether a further page exists.
    RETURN QUERY EXECUTE
        'WITH page AS (' || v_page || '), numbered AS (
             SELECT p.*, row_number() OVER (ORDER BY p.created_at DESC, p.id) AS rn, count(*) OVER () AS fetched
             FROM page AS p
         )
         SELECT x.id::text, x.label, ''pg_durable::orchestration::execute-function-graph''::text,
                x.status, x.generation::bigint, x.output, x.created_at, x.completed_at,
                CASE WHEN x.fetched > $6
                     THEN max(CASE WHEN x.rn = $6 THEN df._list_cursor(x.created_at, x.id) END) OVER ()
                END
         FROM numbered AS x
         WHERE x.rn <= $6
         ORDER BY x.rn'
        USING list_instances.status_filter, list_instances.label_filter, v_ts, v_id, v_limit::bigint + 1, v_limit;
END;
$function$

-- acl {<owner>=X/<owner>}
-- comment Owner only. Every role's step limit in force (df.set_role_limit, else pg_durable.max_user_connections as it applies to the role), where it comes from, and the role's steps in flight now.
CREATE OR REPLACE FUNCTION df.list_role_limits()
 RETURNS TABLE(role text, max_concurrent_steps integer, source text, claims integer, leases integer, updated_at timestamp with time zone)
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    WITH candidates AS (
        SELECT l.role::oid AS oid FROM df.role_limits l
        UNION
        SELECT s.setrole FROM pg_db_role_setting s, unnest(s.setconfig) c
         WHERE s.setrole <> 0
           AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
           AND starts_with(c, 'pg_durable.max_user_connections=')
        UNION
        SELECT a.grantee FROM pg_namespace n, aclexplode(n.nspacl) a
         WHERE n.nspname = 'df' AND a.privilege_type = 'USAGE' AND a.grantee <> 0
    )
    SELECT r.rolname::text, x.lim,
           CASE WHEN l.role IS NOT NULL THEN 'df.set_role_limit' ELSE 'pg_durable.max_user_connections' END,
           f.claims, f.leases, l.updated_at
      FROM candidates c
      JOIN pg_roles r ON r.oid = c.oid
      CROSS JOIN LATERAL (SELECT df._step_limit(c.oid::regrole) AS lim) x
      LEFT JOIN df.role_limits l ON l.role = c.oid::regrole
      CROSS JOIN LATERAL df._role_in_flight(c.oid::regrole, now()) f
     WHERE x.lim IS NOT NULL
     ORDER BY 1
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The caller's schedules with their next and last fires.
CREATE OR REPLACE FUNCTION df.list_schedules()
 RETURNS TABLE(name text, workflow text, cron text, timezone text, input jsonb, missed text, overlap text, paused boolean, next_fire_at timestamp with time zone, last_fire_at timestamp with time zone, last_instance_id character varying, last_instance_status text, last_error text, last_error_at timestamp with time zone, created_at timestamp with time zone, updated_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT s.name, s.workflow, s.cron, s.timezone, s.input, s.missed, s.overlap, s.paused, s.next_fire_at,
           s.last_fire_at, s.last_instance_id, i.status, s.last_error, s.last_error_at, s.created_at, s.updated_at
      FROM df.schedules s
      LEFT JOIN df.instances i ON i.id = s.last_instance_id
     WHERE s.owner = quote_ident(current_user)::regrole
     ORDER BY s.name
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: repeats body while the condition step holds (forever without one, until df.break).
CREATE OR REPLACE FUNCTION df.loop(body text, condition text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF body IS NULL THEN
        RAISE EXCEPTION 'df.loop(): body cannot be NULL' USING ERRCODE = '22004';
    END IF;
    RETURN df._envelope('LOOP', df._ensure(body), p_condition_node => df._ensure(condition));
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL prefix operator @>: df.loop(body).
CREATE OR REPLACE FUNCTION df.loop_prefix_op(body text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df.loop(body);
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Counts of the rows the caller may see: instances by status, executions and events (pg_durable's six columns), then over the last hour steps completed, failed and retried, schedules fired and failed, webhook deliveries, and now the ready backlog and its oldest entry's age; revoked from PUBLIC, granted with with_grant.
CREATE OR REPLACE FUNCTION df.metrics()
 RETURNS TABLE(total_instances bigint, running_instances bigint, completed_instances bigint, failed_instances bigint, total_executions bigint, total_events bigint, window_start timestamp with time zone, steps_completed bigint, steps_failed bigint, steps_retried bigint, ready_backlog bigint, oldest_ready_age_seconds double precision, schedules_fired bigint, schedule_fires_failed bigint, webhook_deliveries bigint)
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    WITH w AS (SELECT now() - interval '1 hour' AS since),
    ready AS (
        SELECT count(*) AS backlog, min(n.run_at) AS oldest
          FROM df.nodes AS n WHERE n.run_at IS NOT NULL AND n.run_at <= now()
    )
    SELECT count(*),
           count(*) FILTER (WHERE i.status IN ('pending', 'running')),
           count(*) FILTER (WHERE i.status = 'completed'),
           count(*) FILTER (WHERE i.status IN ('failed', 'cancelled')),
           coalesce(sum(i.generation), 0)::bigint,
           (SELECT count(*) FROM df.nodes AS n WHERE n.status_details IS NOT NULL),
           (SELECT since FROM w),
           (SELECT count(*) FROM df.nodes AS n, w
             WHERE n.node_type IN ('SQL', 'HTTP', 'HTTP_MULTIPART') AND n.status = 'completed' AND n.updated_at >= w.since),
           (SELECT count(*) FROM df.events AS e, w WHERE e.kind = 'failed' AND e.created_at >= w.since),
           (SELECT count(*) FROM df.events AS e, w WHERE e.kind = 'attempt_failed' AND e.created_at >= w.since),
           (SELECT backlog FROM ready),
           (SELECT coalesce(greatest(extract(epoch FROM now() - oldest)::float8, 0), 0) FROM ready),
           (SELECT count(*) FROM df.schedule_fires AS f, w WHERE f.outcome = 'started' AND f.fired_at >= w.since),
           (SELECT count(*) FROM df.schedule_fires AS f, w WHERE f.outcome = 'failed' AND f.fired_at >= w.since),
           (SELECT count(*) FROM df.hook_deliveries AS d, w WHERE d.received_at >= w.since)
    FROM df.instances AS i
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Pauses a schedule: it does not fire until resumed.
CREATE OR REPLACE FUNCTION df.pause_schedule(name text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    UPDATE df.schedules t SET paused = true, updated_at = now() WHERE t.name = pause_schedule.name AND t.owner = quote_ident(current_user)::regrole;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL (operator |): runs a and b in parallel; the first to finish decides, the other's scope is cancelled.
CREATE OR REPLACE FUNCTION df.race(a text, b text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('RACE', df._ensure(a), df._ensure(b));
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Starts a new instance with the graph, variables and label of an instance of the caller's; returns the new id.
CREATE OR REPLACE FUNCTION df.restart(instance_id text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_old     df.instances%ROWTYPE;
    v_id      varchar(8);
    v_attempt integer := 0;
BEGIN
    IF restart.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_old FROM df.instances AS i
     WHERE i.id = restart.instance_id AND i.submitted_by = quote_ident(current_user)::regrole;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', restart.instance_id USING ERRCODE = 'P0002';
    END IF;

    LOOP
        v_attempt := v_attempt + 1;
        INSERT INTO df.instances AS i (id, label, root_node, submitted_by, database, vars)
        VALUES (df._new_id(), v_old.label, v_old.root_node, v_old.submitted_by, v_old.database, v_old.vars)
        ON CONFLICT (id) DO NOTHING
        RETURNING i.id INTO v_id;
        EXIT WHEN v_id IS NOT NULL;
        IF v_attempt >= 10 THEN
            RAISE EXCEPTION 'Failed to create instance: exhausted 10 attempts to generate a collision-free ID'
                USING ERRCODE = '23505';
        END IF;
    END LOOP;

    -- As df.start writes them: every node pending, the root due now.
    INSERT INTO df.nodes (id, instance_id, node_type, query, result_name, left_node, right_node,
                          submitted_by, database, run_at, options)
    SELECT n.id, v_id, n.node_type, n.query, n.result_name, n.left_node, n.right_node,
           n.submitted_by, n.database, CASE WHEN n.id = v_old.root_node THEN now() END, n.options
      FROM df.nodes AS n
     WHERE n.instance_id = restart.instance_id
     ORDER BY n.id = v_old.root_node DESC, n.id;

    PERFORM pg_notify('pgflare_ready', v_id);
    RETURN v_id;
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The result of an instance's root node once it completed (NULL before).
CREATE OR REPLACE FUNCTION df.result(instance_id text)
 RETURNS text
 LANGUAGE sql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT n.result::text
    FROM df.instances AS i
    JOIN df.nodes AS n ON n.instance_id = i.id AND n.id = i.root_node
    WHERE i.id = $1 AND n.status = 'completed'
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Runs a failed instance of the caller's again from the steps that failed; completed steps keep their results and are not run again.
CREATE OR REPLACE FUNCTION df.resume(instance_id text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_status text;
    v_root   varchar(8);
BEGIN
    IF resume.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    -- Lock order of a control function (DESIGN 7): the instance row, then node rows without waiting.
    SELECT i.status, i.root_node INTO v_status, v_root
      FROM df.instances AS i
     WHERE i.id = resume.instance_id AND i.submitted_by = quote_ident(current_user)::regrole
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', resume.instance_id USING ERRCODE = 'P0002';
    END IF;
    IF v_status <> 'failed' THEN
        RAISE EXCEPTION 'Instance % is %: only a failed instance can be resumed', resume.instance_id, v_status
            USING ERRCODE = 'PF020',
                  HINT = 'df.restart(instance_id) starts a new instance with the same graph.';
    END IF;

    PERFORM 1 FROM df.nodes AS n WHERE n.instance_id = resume.instance_id AND n.id = v_root FOR UPDATE NOWAIT;
    UPDATE df.nodes AS n SET run_at = now()
     WHERE n.instance_id = resume.instance_id AND n.id = v_root;
    UPDATE df.instances AS i SET status = 'running', updated_at = now()
     WHERE i.id = resume.instance_id;

    PERFORM pg_notify('pgflare_ready', resume.instance_id);
    RETURN format('Instance %s resumed', resume.instance_id);
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Resumes a paused schedule from the next fire time after now; returns it.
CREATE OR REPLACE FUNCTION df.resume_schedule(name text)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    s      df.schedules%ROWTYPE;
    v_next timestamptz;
BEGIN
    SELECT * INTO s FROM df.schedules t WHERE t.name = resume_schedule.name AND t.owner = quote_ident(current_user)::regrole FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    v_next := CASE WHEN s.paused THEN df._cron_next(s.cron, s.timezone, now()) ELSE s.next_fire_at END;
    UPDATE df.schedules t SET paused = false, next_fire_at = v_next, updated_at = now() WHERE t.id = s.id;
    RETURN v_next;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: retries a failing step up to max_attempts times with exponential backoff.
CREATE OR REPLACE FUNCTION df.retry(step text, max_attempts integer, backoff_seconds numeric DEFAULT 1, max_backoff_seconds numeric DEFAULT 300)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF (df._ensure_fields(step)).node_type NOT IN ('SQL', 'HTTP', 'HTTP_MULTIPART') THEN
        RAISE EXCEPTION 'df.retry: only SQL and HTTP steps can be retried, not %', (df._ensure_fields(step)).node_type
            USING ERRCODE = '22023';
    ELSIF max_attempts < 1 OR max_attempts > 1000 THEN
        RAISE EXCEPTION 'df.retry: max_attempts must be between 1 and 1000, got %', max_attempts USING ERRCODE = '22023';
    ELSIF backoff_seconds < 0 OR max_backoff_seconds < 0 THEN
        RAISE EXCEPTION 'df.retry: backoff must not be negative' USING ERRCODE = '22023';
    END IF;
    RETURN df._with_options(step, jsonb_build_object('retry', jsonb_build_object(
        'max_attempts', max_attempts, 'backoff_seconds', backoff_seconds, 'max_backoff_seconds', max_backoff_seconds)));
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Revokes a REST API token of a role.
CREATE OR REPLACE FUNCTION df.revoke_api_token(name text, role text DEFAULT CURRENT_USER)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_role  regrole := df._api_token_target(revoke_api_token.role);
    v_count integer;
BEGIN
    UPDATE df._api_tokens AS t SET revoked_at = now()
     WHERE t.name = revoke_api_token.name AND t.role = v_role AND t.revoked_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count = 0 THEN
        RAISE EXCEPTION 'no active API token named "%" for role %', revoke_api_token.name, v_role
            USING ERRCODE = 'P0002';
    END IF;
    RETURN 'OK';
END;
$function$

-- acl {<owner>=X/<owner>}
-- comment Revokes what the caller granted the role with df.grant_usage (CASCADE: also what the role granted on), and drops the step runners of roles left without usage.
CREATE OR REPLACE FUNCTION df.revoke_usage(p_role text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_role oid := to_regrole(quote_ident(p_role))::oid;
    v_me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
    v_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    v_fn regprocedure;
BEGIN
    IF v_role IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '42704';
    END IF;
    -- Exactly the EXECUTE grants the caller made (a superuser acts as the functions' owner), whatever
    -- version of df.grant_usage made them.
    FOR v_fn IN SELECT DISTINCT p.oid::regprocedure
                  FROM pg_proc p, aclexplode(p.proacl) a
                 WHERE p.pronamespace = 'df'::regnamespace AND a.privilege_type = 'EXECUTE'
                   AND a.grantee = v_role AND a.grantee <> p.proowner
                   AND (a.grantor = v_me OR (v_super AND a.grantor = p.proowner))
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I CASCADE', v_fn, p_role);
    END LOOP;
    -- Exactly what grant_usage granted on df._hooks: REVOKE ALL would also name columns never granted
    -- (the system columns, whose SELECT is column-level), which a delegate may not revoke.
    EXECUTE format('REVOKE SELECT (id, name, owner, workflow, scheme, tolerance_seconds, max_body_bytes, created_at, secret_rotated_at), '
                   'INSERT (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes), UPDATE (secret, secret_rotated_at), DELETE '
                   'ON df._hooks FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE SELECT, INSERT (hook_id, delivery_id, instance_id), DELETE ON df.hook_deliveries FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE ALL ON df.instances, df.nodes, df.vars, df.signals, df.scopes, df.events, df.workflows, df.schedules, df.schedule_fires FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA df FROM %I CASCADE', p_role);
    RAISE NOTICE 'pg_durable: revoked df usage privileges granted by "%" from "%"', current_user, p_role;
    -- The role's runner goes once it has no usage left (another grantor's grant keeps it), and so do the
    -- runners of roles the CASCADE took usage from.
    PERFORM df._drop_stale_runners();
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Replaces a webhook's secret; returns the new one.
CREATE OR REPLACE FUNCTION df.rotate_hook_secret(name text, secret text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_secret text := coalesce(rotate_hook_secret.secret, df._new_hook_secret());
    v_count  integer;
BEGIN
    PERFORM df._hook_check(NULL, NULL, rotate_hook_secret.secret, NULL, NULL);
    UPDATE df._hooks AS h SET secret = v_secret, secret_rotated_at = now() WHERE h.name = rotate_hook_secret.name;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count = 0 THEN
        RAISE EXCEPTION 'no webhook named "%"', rotate_hook_secret.name USING ERRCODE = 'P0002';
    END IF;
    RETURN v_secret;
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment pg_durable compatibility: a no-op that reports a triggered run; the worker picks up ready work by itself.
CREATE OR REPLACE FUNCTION df.run(instance_id text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE WHEN $1 IS NULL THEN 'Triggered run for all pending instances'
                ELSE 'Triggered run for instance: ' || $1 END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The fires of a schedule, newest first, with the instance each started.
CREATE OR REPLACE FUNCTION df.schedule_history(name text, limit_count integer DEFAULT 100)
 RETURNS TABLE(fire_at timestamp with time zone, outcome text, instance_id character varying, instance_status text, error text, fired_at timestamp with time zone)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_id bigint;
BEGIN
    IF limit_count IS NULL OR limit_count < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = '22023';
    END IF;
    SELECT s.id INTO v_id FROM df.schedules s
     WHERE s.name = schedule_history.name AND s.owner = quote_ident(current_user)::regrole;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    RETURN QUERY
    SELECT f.fire_at, f.outcome, f.instance_id, i.status, f.error, f.fired_at
      FROM df.schedule_fires f
      LEFT JOIN df.instances i ON i.id = f.instance_id
     WHERE f.schedule_id = v_id
     ORDER BY f.fire_at DESC
     LIMIT limit_count;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL (operator ~>): runs a, then b.
CREATE OR REPLACE FUNCTION df.seq(a text, b text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('THEN', df._ensure(a), df._ensure(b));
END
$function$

-- acl {<owner>=X/<owner>}
-- comment Owner of schema df or a superuser only. Sets the most steps of a role running at once (NULL removes the limit); the claim skips a role at its limit.
CREATE OR REPLACE FUNCTION df.set_role_limit(role text, max_concurrent_steps integer)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_role regrole;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
       AND NOT pg_has_role(current_user, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'df'), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: only the owner of schema df or a superuser may set role limits'
            USING ERRCODE = '42501';
    END IF;
    IF set_role_limit.role IS NULL THEN
        RAISE EXCEPTION 'df.set_role_limit(): role must not be NULL' USING ERRCODE = '22023';
    END IF;
    SELECT r.oid::regrole INTO v_role FROM pg_roles r WHERE r.rolname = set_role_limit.role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role "%" does not exist', set_role_limit.role USING ERRCODE = '42704';
    END IF;
    IF set_role_limit.max_concurrent_steps IS NULL THEN
        DELETE FROM df.role_limits l WHERE l.role = v_role;
        RETURN NULL;
    END IF;
    IF set_role_limit.max_concurrent_steps NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_concurrent_steps must be between 1 and 1000 (or NULL for no limit), got %',
            set_role_limit.max_concurrent_steps USING ERRCODE = '22023';
    END IF;
    INSERT INTO df.role_limits AS l (role, max_concurrent_steps) VALUES (v_role, set_role_limit.max_concurrent_steps)
    ON CONFLICT ON CONSTRAINT role_limits_pkey DO UPDATE SET max_concurrent_steps = EXCLUDED.max_concurrent_steps, updated_at = now();
    RETURN set_role_limit.max_concurrent_steps;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Sets a variable of the caller's, read by steps as {name}.
CREATE OR REPLACE FUNCTION df.setvar(name text, value text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.setvar() cannot be called inside a workflow - set variables before starting the workflow'
            USING ERRCODE = '55000';
    END IF;
    -- Conflict target by constraint name: a column list `(owner, name)` would clash with the
    -- parameter `name` inside plpgsql.
    INSERT INTO df.vars AS v (name, value) VALUES (setvar.name, setvar.value)
    ON CONFLICT ON CONSTRAINT vars_pkey DO UPDATE SET value = EXCLUDED.value;
    PERFORM df._mark_helper('df.setvar');
    RETURN 'OK';
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Sends a named signal, with optional data, to an instance of the caller's; a waiting df.wait_for_signal step receives it.
CREATE OR REPLACE FUNCTION df.signal(instance_id text, signal_name text, signal_data text DEFAULT '{}'::text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_owner  regrole;
    v_status text;
    v_woken  integer;
    v_as     text := nullif(current_setting('pgflare.start_as', true), '');
BEGIN
    IF signal.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF signal.signal_name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = '22023';
    END IF;

    -- On df._signal_new's loopback session (0030) the owner of schema df signals for the caller it checked:
    -- only that caller's instances are found, as RLS would find them for the caller.
    IF v_as IS NOT NULL AND current_user::text IS DISTINCT FROM (SELECT n.nspowner::regrole::text FROM pg_catalog.pg_namespace n WHERE n.nspname = 'df') THEN
        RAISE EXCEPTION 'pgflare.start_as is set, but only the owner of schema df may signal for another role' USING ERRCODE = '42501';
    END IF;
    SELECT i.submitted_by, i.status INTO v_owner, v_status
    FROM df.instances AS i WHERE i.id = signal.instance_id
      AND (v_as IS NULL OR i.submitted_by::oid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = v_as));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', signal.instance_id
            USING ERRCODE = 'P0002';
    END IF;

    -- Payload: JSON when the text is JSON, else the text as a JSON string ('approve' -> "approve").
    INSERT INTO df.signals (instance_id, signal_name, payload, submitted_by)
    VALUES (signal.instance_id, signal.signal_name,
            coalesce(df._jsonb_or_null(signal.signal_data), to_jsonb(signal.signal_data)),
            v_owner);

    -- Only a wait that is already subscribed (a running SIGNAL node, in any scope of the instance)
    -- receives the signal: make it claimable now and wake the workers. Earlier/later signals are the
    -- engine's to drop (§3.10).
    IF v_status IN ('pending', 'running') THEN
        UPDATE df.nodes AS n SET run_at = now()
        WHERE n.instance_id = signal.instance_id
          AND n.node_type = 'SIGNAL'
          AND n.status = 'running'
          AND df._jsonb_or_null(n.query) ->> 'signal_name' = signal.signal_name;
        GET DIAGNOSTICS v_woken = ROW_COUNT;
        IF v_woken > 0 THEN
            PERFORM pg_notify('pgflare_ready', signal.instance_id);
        END IF;
    END IF;

    RETURN 'OK';
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Sends a named signal to an instance of the caller's: 'caller' as df.signal(id, name, data), delivered when the caller commits; 'new' committed at once on a dblink loopback session, so a worker sees it while the caller's transaction goes on.
CREATE OR REPLACE FUNCTION df.signal(instance_id text, signal_name text, signal_data text, transaction_mode text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_mode text := lower(transaction_mode);
BEGIN
    IF v_mode NOT IN ('caller', 'new') THEN
        RAISE EXCEPTION 'invalid transaction_mode "%" for df.signal(): expected ''caller'' or ''new''', transaction_mode USING ERRCODE = '22023';
    END IF;
    IF v_mode = 'caller' OR df._in_workflow() THEN
        RETURN df.signal(signal.instance_id, signal.signal_name, signal.signal_data);
    END IF;
    -- The caller's own checks first (RLS applies here), so their errors read as for a plain df.signal.
    IF signal.instance_id = '' THEN
        RAISE EXCEPTION 'Instance ID cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF signal.signal_name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM df.instances i WHERE i.id = signal.instance_id) THEN
        RAISE EXCEPTION 'Instance not found or access denied: %', signal.instance_id USING ERRCODE = 'P0002';
    END IF;
    RETURN df._signal_new(signal.instance_id, signal.signal_name, signal.signal_data, current_user::text);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: a durable timer; the instance waits this many seconds without holding a connection.
CREATE OR REPLACE FUNCTION df.sleep(seconds bigint)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF seconds < 0 THEN
        RAISE EXCEPTION 'Sleep duration must be non-negative' USING ERRCODE = '22023';
    END IF;
    RETURN df._envelope('SLEEP', p_query => seconds::text);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: a SQL step (a leaf). Plain text where a step is expected means the same.
CREATE OR REPLACE FUNCTION df.sql(query text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN df._envelope('SQL', p_query => query);
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Validates a workflow graph and starts it as an instance owned by current_user, in the caller's transaction (transaction_mode => 'caller') or committed on a loopback session through dblink ('new'); returns the instance id. Steps run later, on the worker, as that owner; with database => another database of the server, over the worker's connection to it.
CREATE OR REPLACE FUNCTION df.start(fut text, label text DEFAULT NULL::text, database text DEFAULT NULL::text, transaction_mode text DEFAULT 'caller'::text)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_mode     text := lower(transaction_mode);
    v_envelope text;
    v_user     text := current_user;
    v_as       text := nullif(current_setting('pgflare.start_as', true), '');
    v_role     regrole;
    v_login    boolean;
    v_super    boolean;
    v_ids      varchar(8)[];
    v_types    text[];
    v_queries  text[];
    v_names    text[];
    v_lefts    varchar(8)[];
    v_rights   varchar(8)[];
    v_options  jsonb[];
    v_vars     jsonb;
    v_id       varchar(8);
    v_attempt  integer := 0;
    v_other    jsonb;
BEGIN
    -- ===== GUARD: arguments =====
    IF v_mode IS NULL OR v_mode NOT IN ('caller', 'new') THEN
        RAISE EXCEPTION 'invalid transaction_mode "%" for df.start(): expected ''caller'' or ''new''',
            coalesce(transaction_mode, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF v_mode = 'new' THEN
        IF df._in_workflow() THEN
            RAISE EXCEPTION 'df.start() with transaction_mode => ''new'' cannot be called inside a workflow - a df.sql() node already runs as a single autocommitted statement, so a plain df.start() there is already independent of any caller transaction'
                USING ERRCODE = '0A000';
        END IF;
        IF fut IS NULL THEN
            RAISE EXCEPTION 'df.start(): fut must not be NULL' USING ERRCODE = '22004';
        END IF;
        -- A second session started by df._start_new commits the start on its own (0030).
        RETURN df._start_new(fut, label, database, current_user::text);
    END IF;
    IF fut IS NULL THEN
        RAISE EXCEPTION 'df.start(): fut must not be NULL' USING ERRCODE = '22004';
    END IF;

    -- ===== PHASE 1: parse (§1.4, strict) =====
    v_envelope := df._ensure(fut, true);

    -- ===== GUARD: database, identity (§5.0, §6.1) =====
    IF database IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d WHERE d.datname = database) THEN
            RAISE EXCEPTION 'database "%" does not exist', database USING ERRCODE = '3D000';
        END IF;
        -- Another database of this server (0031): the steps run there on the worker's connection to it
        -- (docs/ARCHITECTURE.md, "Steps in another database"); every node carries it in its options,
        -- which the claim returns, so the worker knows without a read.
        IF database <> current_database() THEN
            v_other := jsonb_build_object('database', database);
        END IF;
    END IF;

    -- transaction_mode => 'new' (0030): df._start_new's loopback session runs as the owner of schema df and
    -- starts the instance for the caller it checked. Nobody else may start as another role.
    IF v_as IS NOT NULL THEN
        IF current_user::text IS DISTINCT FROM (SELECT n.nspowner::regrole::text FROM pg_catalog.pg_namespace n WHERE n.nspname = 'df') THEN
            RAISE EXCEPTION 'pgflare.start_as is set, but only the owner of schema df may start an instance for another role'
                USING ERRCODE = '42501', HINT = 'RESET pgflare.start_as; it is set by df.start(…, transaction_mode => ''new'') on its own session.';
        END IF;
        v_user := v_as;
    END IF;
    SELECT r.rolcanlogin, r.rolsuper INTO v_login, v_super
      FROM pg_catalog.pg_roles r WHERE r.rolname = v_user;
    IF NOT coalesce(v_login, false) THEN
        RAISE EXCEPTION 'current_user "%" does not have LOGIN privilege. The background worker must connect as this role to execute SQL. Grant LOGIN to this role or call df.start() as a role with LOGIN.',
            v_user USING ERRCODE = '42501';
    END IF;
    IF v_super AND lower(df._setting('enable_superuser_instances', 'off')) NOT IN ('on', 'true', 'yes', '1') THEN
        RAISE EXCEPTION 'pg_durable: superuser instances are disabled. current_user "%" is a superuser, but pg_durable.enable_superuser_instances is off. Set pg_durable.enable_superuser_instances = on to allow this.',
            v_user USING ERRCODE = '42501';
    END IF;
    v_role := quote_ident(v_user)::regrole;

    -- ===== PHASE 2: validate and flatten (§1.5); nothing is written before this succeeds =====
    SELECT array_agg(f.id ORDER BY f.ord), array_agg(f.node_type ORDER BY f.ord),
           array_agg(f.query ORDER BY f.ord), array_agg(f.result_name ORDER BY f.ord),
           array_agg(f.left_node ORDER BY f.ord), array_agg(f.right_node ORDER BY f.ord),
           array_agg(f.options ORDER BY f.ord)
      INTO v_ids, v_types, v_queries, v_names, v_lefts, v_rights, v_options
      FROM df._flatten(v_envelope) f;

    -- Only the caller's own variables, even for roles that bypass RLS (§6.2); NULL values are skipped.
    SELECT coalesce(jsonb_object_agg(v.name, v.value) FILTER (WHERE v.value IS NOT NULL), '{}'::jsonb)
      INTO v_vars
      FROM df.vars v WHERE v.owner = v_role;

    -- ===== PHASE 3: reserve the instance id (re-rolled on collision, below RLS) =====
    LOOP
        v_attempt := v_attempt + 1;
        INSERT INTO df.instances AS i (id, label, root_node, submitted_by, database, vars)
        VALUES (df._new_id(), label, v_ids[1], v_role, database, v_vars)
        ON CONFLICT (id) DO NOTHING
        RETURNING i.id INTO v_id;
        EXIT WHEN v_id IS NOT NULL;
        IF v_attempt >= 10 THEN
            RAISE EXCEPTION 'Failed to create instance: exhausted 10 attempts to generate a collision-free ID'
                USING ERRCODE = '23505';
        END IF;
    END LOOP;

    -- ===== PHASE 4: nodes, root first; the root is due now so a worker can claim it =====
    INSERT INTO df.nodes (id, instance_id, node_type, query, result_name, left_node, right_node,
                          submitted_by, database, run_at, options)
    SELECT u.id, v_id, u.node_type, u.query, u.result_name, u.left_node, u.right_node,
           v_role, database, CASE WHEN u.n = 1 THEN now() END,
           CASE WHEN v_other IS NULL THEN u.options ELSE coalesce(u.options, '{}'::jsonb) || v_other END
      FROM unnest(v_ids, v_types, v_queries, v_names, v_lefts, v_rights, v_options)
               WITH ORDINALITY AS u(id, node_type, query, result_name, left_node, right_node, options, n)
     ORDER BY u.n;

    -- ===== PHASE 5: hand off; the notification is delivered only if the caller commits =====
    BEGIN
        PERFORM pg_notify('pgflare_ready', v_id);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'failed to start durable function: %', SQLERRM USING ERRCODE = SQLSTATE;
    END;

    RETURN v_id;
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Starts the latest (or the given) version of a named workflow, with an input steps read as the named result input.
CREATE OR REPLACE FUNCTION df.start_workflow(name text, input jsonb DEFAULT NULL::jsonb, label text DEFAULT NULL::text, version integer DEFAULT NULL::integer)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment An instance's status (pending, running, completed, failed, cancelled), or NULL when the caller cannot see it. A pending instance whose first step is running (its claim holds the advisory lock (1885824620, hashtext(id))) reads as running.
CREATE OR REPLACE FUNCTION df.status(instance_id text)
 RETURNS text
 LANGUAGE sql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT CASE WHEN i.status = 'pending' AND EXISTS (SELECT 1 FROM pg_locks l
                  WHERE l.locktype = 'advisory' AND l.classid = 1885824620::oid AND l.objsubid = 2
                    AND l.objid = hashtext(i.id)::oid AND l.granted
                    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                THEN 'running' ELSE i.status END
      FROM df.instances AS i WHERE i.id = $1
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The database steps run in (the current one).
CREATE OR REPLACE FUNCTION df.target_database()
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT current_database()::text
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: fails a step that runs longer than this many seconds.
CREATE OR REPLACE FUNCTION df.timeout(step text, seconds numeric)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF (df._ensure_fields(step)).node_type <> 'SQL' THEN
        RAISE EXCEPTION 'df.timeout: only SQL steps take a statement timeout, not % (HTTP steps have timeout_seconds)',
            (df._ensure_fields(step)).node_type USING ERRCODE = '22023';
    ELSIF seconds <= 0 THEN
        RAISE EXCEPTION 'df.timeout: seconds must be positive, got %', seconds USING ERRCODE = '22023';
    END IF;
    RETURN df._with_options(step, jsonb_build_object('timeout_seconds', seconds));
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Removes a variable of the caller's.
CREATE OR REPLACE FUNCTION df.unsetvar(name text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF df._in_workflow() THEN
        RAISE EXCEPTION 'df.unsetvar() cannot be called inside a workflow - manage variables before starting the workflow'
            USING ERRCODE = '55000';
    END IF;
    DELETE FROM df.vars AS v
    WHERE v.name = unsetvar.name AND v.owner = quote_ident(current_user)::regrole;
    PERFORM df._mark_helper('df.unsetvar');
    RETURN 'OK';
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment The pg_durable version this surface implements, and pgflare's.
CREATE OR REPLACE FUNCTION df.version()
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT '0.2.6 (pgflare 0.1.0)'::text
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment Deprecated alias of df.await_instance (raises a warning).
CREATE OR REPLACE FUNCTION df.wait_for_completion(instance_id text, timeout_seconds integer DEFAULT 30)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RAISE WARNING 'df.wait_for_completion() is deprecated; use df.await_instance() instead';
    RETURN df.await_instance(wait_for_completion.instance_id, wait_for_completion.timeout_seconds);
END;
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: waits until the next time the cron expression matches.
CREATE OR REPLACE FUNCTION df.wait_for_schedule(cron_expr text)
 RETURNS text
 LANGUAGE plpgsql
 STRICT
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    PERFORM df._cron_validate(cron_expr);
    RETURN df._envelope('WAIT_SCHEDULE', p_query => '{"cron_expr":' || to_json(cron_expr)::text || '}');
END
$function$

-- acl {=X/<owner>,<owner>=X/<owner>}
-- comment DSL: waits for a signal of this name sent with df.signal (optionally at most timeout_seconds); its data is the step's result.
CREATE OR REPLACE FUNCTION df.wait_for_signal(name text, timeout_seconds integer DEFAULT NULL::integer)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'df.wait_for_signal(): name cannot be NULL' USING ERRCODE = '22004';
    ELSIF name = '' THEN
        RAISE EXCEPTION 'Signal name cannot be empty' USING ERRCODE = '22023';
    ELSIF timeout_seconds <= 0 THEN
        RAISE EXCEPTION 'Timeout must be positive' USING ERRCODE = '22023';
    END IF;
    RETURN df._envelope('SIGNAL', p_query => '{"signal_name":' || to_json(name)::text
        || ',"timeout_seconds":' || coalesce(timeout_seconds::text, 'null') || '}');
END
$function$

