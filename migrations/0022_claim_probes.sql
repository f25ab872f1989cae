-- 0022_claim_probes: df._claim finds the claimed row's instance and scope by a primary-key probe, whatever
-- the statistics say (as 0019 did for the checkpoint functions).
--
-- The claim keeps a generic plan (0018), made from the tables' statistics. Taken when df.scopes was nearly
-- empty but still large on disk (instances deleted, no vacuum yet), they say "one row", and the plan
-- joined the claimed row to its scope by scanning all of scopes_pkey with the key in a join filter. Every
-- finished instance leaves its root scope, so each claim read more: found in bench W2 sustained after
-- another contender's phase (EXPLAIN of the claim: 11 057 scope rows read, 12 ms; the rate fell from
-- 1 000 to 200 steps/s within a minute). The instance and the scope are now correlated subqueries with
-- OFFSET 0, which are never pulled up into a join, so their only plan is a probe on both key columns.
--
-- The same statistics also price a probe of scopes_pkey above a scan of the whole table once it has grown
-- (a cost scaled by the index's current size over the one row it had): the generic plan flipped to a
-- sequential scan of df.scopes per claim (EXPLAIN: 599 pages read, 16-19 ms; the rate fell to 400 steps/s
-- until autoanalyze came). Every table access in df._claim and df._lock_and_load is a probe or the
-- ready-index scan, so both now run with enable_seqscan = off, as df._apply has since 0016.
-- test/engine/claim-plans.test.ts reproduces those statistics and counts the rows a claim reads.
--
-- Same signature, columns and role-limit path as 0018. Error codes: none raised here.
CREATE OR REPLACE FUNCTION df._claim(p_now timestamptz, p_instance_id varchar DEFAULT NULL, p_node_id varchar DEFAULT NULL)
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
DECLARE
    v df.nodes%ROWTYPE;
    v_scope text;
    v_full oid[] := '{}';
    v_limit integer;
    v_found boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM df.role_limits) THEN
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
                SELECT l.max_concurrent_steps INTO v_limit FROM df.role_limits l WHERE l.role = v.submitted_by;
                IF FOUND AND NOT df._take_slot(v.submitted_by, v_limit, p_now) THEN
                    RAISE EXCEPTION 'role at its step limit' USING ERRCODE = 'PFL01';  -- internal: undo the row lock and the slot
                END IF;
                v_found := true;
                EXIT;
            EXCEPTION WHEN SQLSTATE 'PFL01' THEN
                v_full := v_full || v.submitted_by::oid;
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
$$;

ALTER FUNCTION df._lock_and_load(varchar, varchar[], text[]) SET enable_seqscan = off;
