-- 0014_limits: size limits on what users write (issue 7 item 5; SPEC §6.5 and our own)
--
--   df._limit_nodes()    AFTER INSERT ON df.nodes (per statement): one step's text, and one graph's total
--   df._limit_signal()   BEFORE INSERT ON df.signals: signal data
--   df._limit_var()      BEFORE INSERT OR UPDATE ON df.vars: a variable's value
--   df.if_then_op        `?>` refuses inputs over the graph limit (chains of `?>` double in size per level)
--
-- Triggers rather than edits of df.start / df.signal / df.setvar: the check holds for every writer, and
-- the statement that breaks a limit fails whole, so nothing is half-written. Every breach raises 54000
-- (program_limit_exceeded) with a message naming the setting. Node rows are written only by df.start.
--
-- Settings (placeholders, read in the writer's session; empty or not a positive integer = the default):
--   pgflare.max_step_bytes    1 MiB   one node's query text: SQL statement, HTTP config with its body template
--   pgflare.max_graph_bytes   8 MiB   all node texts of one df.start together; a `?>` operand
--   pgflare.max_signal_bytes  1 MiB   df.signal data (as stored, jsonb text)
--   pgflare.max_var_bytes     1 MiB   a df.vars value
-- The trigger bodies read the setting inline: a helper function would need EXECUTE for every role.

CREATE FUNCTION df._limit_nodes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE TRIGGER nodes_limits AFTER INSERT ON df.nodes
    REFERENCING NEW TABLE AS new_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION df._limit_nodes();

CREATE FUNCTION df._limit_signal() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE TRIGGER signals_limits BEFORE INSERT ON df.signals
    FOR EACH ROW EXECUTE FUNCTION df._limit_signal();

CREATE FUNCTION df._limit_var() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE TRIGGER vars_limits BEFORE INSERT OR UPDATE OF value ON df.vars
    FOR EACH ROW EXECUTE FUNCTION df._limit_var();

-- `?>` keeps pg_durable's partial-if shape (SPEC §2.3): its operands are stored as JSON strings, so
-- every level of `a ?> b ?> c ?> …` escapes the level below again and the text doubles in size. Found
-- by fuzzing: 40 levels of a 1 KiB DSL string ran for 45 s before PostgreSQL's own size limit. The
-- operands are now held to the graph limit, which stops such a chain after about 20 levels, in
-- milliseconds. Unchanged otherwise.
CREATE OR REPLACE FUNCTION df.if_then_op(condition text, then_branch text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;
