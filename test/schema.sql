-- schema
schema df acl {<owner>=UC/<owner>}

-- tables and columns
table df._config 1:key text not null
table df._config 2:value text not null
table df._migrations 1:version integer not null
table df._migrations 2:name text not null
table df._migrations 3:checksum text not null
table df._migrations 4:applied_at timestamp with time zone not null default now()
table df._worker_epoch 1:epoch_id uuid not null
table df._worker_epoch 2:started_at timestamp with time zone not null default now()
table df._worker_epoch 3:last_seen_at timestamp with time zone not null default now()
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
table df.signals 1:id bigint not null
table df.signals 2:instance_id character varying(8) not null
table df.signals 3:signal_name text not null
table df.signals 4:payload jsonb
table df.signals 5:submitted_by regrole not null
table df.signals 6:created_at timestamp with time zone not null default now()
table df.vars 1:name text not null
table df.vars 2:value text
table df.vars 3:owner regrole not null default (quote_ident((CURRENT_USER)::text))::regrole

-- table options and grants
table df._config rls=f force=f acl={<owner>=arwdDxt/<owner>}
table df._migrations rls=f force=f acl={<owner>=arwdDxt/<owner>}
table df._worker_epoch rls=f force=f acl={<owner>=arwdDxt/<owner>}
table df.instances rls=t force=f acl=default
table df.nodes rls=t force=f acl=default
table df.signals rls=t force=f acl=default
table df.vars rls=t force=f acl=default

-- constraints
constraint _config_pkey on df._config: PRIMARY KEY (key)
constraint _migrations_pkey on df._migrations: PRIMARY KEY (version)
constraint _worker_epoch_pkey on df._worker_epoch: PRIMARY KEY (epoch_id)
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
constraint signals_instance_fkey on df.signals: FOREIGN KEY (instance_id, submitted_by) REFERENCES df.instances(id, submitted_by) ON DELETE CASCADE
constraint signals_pkey on df.signals: PRIMARY KEY (id)
constraint vars_pkey on df.vars: PRIMARY KEY (owner, name)

-- indexes
CREATE UNIQUE INDEX _config_pkey ON df._config USING btree (key)
CREATE UNIQUE INDEX _migrations_pkey ON df._migrations USING btree (version)
CREATE UNIQUE INDEX _worker_epoch_pkey ON df._worker_epoch USING btree (epoch_id)
CREATE INDEX instances_created_idx ON df.instances USING btree (created_at DESC, id)
CREATE UNIQUE INDEX instances_identity_key ON df.instances USING btree (id, submitted_by)
CREATE INDEX instances_label_created_idx ON df.instances USING btree (label, created_at DESC, id) WHERE (label IS NOT NULL)
CREATE UNIQUE INDEX instances_pkey ON df.instances USING btree (id)
CREATE INDEX instances_status_created_idx ON df.instances USING btree (status, created_at DESC, id)
CREATE UNIQUE INDEX nodes_pkey ON df.nodes USING btree (instance_id, id)
CREATE INDEX nodes_ready_idx ON df.nodes USING btree (run_at) WHERE (run_at IS NOT NULL)
CREATE INDEX signals_instance_idx ON df.signals USING btree (instance_id, signal_name, id)
CREATE UNIQUE INDEX signals_pkey ON df.signals USING btree (id)
CREATE UNIQUE INDEX vars_pkey ON df.vars USING btree (owner, name)

-- policies
policy instances_owner on df.instances for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy nodes_owner on df.nodes for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy signals_owner on df.signals for ALL using (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((submitted_by)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))
policy vars_owner on df.vars for ALL using (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid)) with check (((owner)::oid = ((quote_ident((CURRENT_USER)::text))::regrole)::oid))

-- operators


-- functions
-- acl default
CREATE OR REPLACE FUNCTION df._in_workflow()
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce(current_setting('df.in_workflow', true), '') = 'true'
$function$

-- acl default
CREATE OR REPLACE FUNCTION df._new_id()
 RETURNS character varying
 LANGUAGE sql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT right(replace(gen_random_uuid()::text, '-', ''), 8)::varchar(8)
$function$

-- acl default
CREATE OR REPLACE FUNCTION df._setting(p_name text, p_default text)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
    SELECT coalesce(nullif(current_setting('pg_durable.' || p_name, true), ''), p_default)
$function$

