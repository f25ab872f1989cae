-- 0007_explain: df.explain (SPEC §5.1), a dry run of a graph or a live view of an instance
--
--   df._explain_cut(text, limit, keep)  byte-bounded label truncation
--   df._explain_json(text)              jsonb or NULL (labels read config queries that may be anything)
--   df._explain_label(...)              one node's label
--   df._explain_tree(root, nodes)       the tree renderer shared by dry runs and instances
--   df._explain_graph(envelope)         validate + flatten + render, validation errors returned as text
--   df.explain(input)                   instance id, envelope, DSL expression or plain SQL
--
-- df.explain never raises for bad input: like pg_durable it returns the error text (callers match on
-- prefixes such as "Invalid durable function graph" and "Cannot explain input").

-- `p_text` cut to at most p_keep bytes (on a character boundary) plus '...' when longer than p_limit bytes.
CREATE FUNCTION df._explain_cut(p_text text, p_limit integer, p_keep integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df._explain_json(p_text text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN p_text::jsonb;
EXCEPTION WHEN OTHERS THEN   -- not JSON, or JSON that jsonb cannot hold (\u0000, too deep)
    RETURN NULL;
END
$$;

-- A node's label (§5.1). Config fields are read only when they have the expected JSON type.
CREATE FUNCTION df._explain_label(p_type text, p_query text, p_name text, p_has_left boolean, p_has_right boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- Renders the tree below p_root. p_nodes maps node id → {"t": type, "q": query, "n": result name,
-- "l": left id, "r": right id, "m": status marker or absent}. Iterative (an explicit task stack of
-- node / children / line tasks) so deep graphs need no recursion. Lines are right-padded to the
-- longest line + 4 characters and joined with \n, no trailing newline.
CREATE FUNCTION df._explain_tree(p_root text, p_nodes jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- Validate, flatten and render an envelope; a validation error is the result text.
CREATE FUNCTION df._explain_graph(p_envelope text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.explain(input text) RETURNS text
LANGUAGE plpgsql STRICT VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
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
        PERFORM set_config('search_path', 'pg_catalog, df, @operator_schema@, pg_temp', true);
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
$$;

GRANT EXECUTE ON FUNCTION df.explain(text) TO PUBLIC;
