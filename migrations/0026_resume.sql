-- 0026_resume: df.resume and df.restart (issue 18 item 1): run a failed instance again from the steps
-- that failed, or start a new instance with the same graph, variables and label.
--
-- Decision 6 (DESIGN.md): df.resume does not advance the graph. It flips the instance (failed → running)
-- and makes its root row claimable. A worker that claims an instance's root row while the root node
-- failed and the instance is active (nothing else leaves that combination) runs the resume through the
-- state machine (src/engine/resume.ts, graph/advance.ts Checkpoint.resume): the root is activated again,
-- every leaf that completed in the activation it gets again is replayed with its recorded result instead
-- of running, and the rest (the failed leaves, what never ran) is activated afresh (attempts 0). The
-- engine writes the event 'resumed'.
--
-- Both run as the caller (SECURITY INVOKER) and only for the instance's owner: another role's instance is
-- not found, even for a role that bypasses row-level security. They write only the columns df.cancel,
-- df.signal and df.start write (the grants of df.grant_usage).
--
-- SQLSTATEs (stable; clients may match on them):
--   22023 invalid_parameter_value   empty instance id
--   P0002 no_data_found             instance not found (or not the caller's)
--   PF020                           df.resume of an instance that is not failed (pending, running,
--                                   completed, cancelled)
--   55P03 lock_not_available        df.resume met the root row held by a worker (try again)

CREATE FUNCTION df.resume(instance_id text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- A new instance of the same graph (the same node ids under a new instance id), with the variables and
-- label captured when the original started; the original is left as it is, in any status.
CREATE FUNCTION df.restart(instance_id text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

GRANT EXECUTE ON FUNCTION df.resume(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.restart(text) TO PUBLIC;

COMMENT ON FUNCTION df.resume(text) IS 'Runs a failed instance of the caller''s again from the steps that failed; completed steps keep their results and are not run again.';
COMMENT ON FUNCTION df.restart(text) IS 'Starts a new instance with the graph, variables and label of an instance of the caller''s; returns the new id.';
