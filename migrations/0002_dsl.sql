-- 0002_dsl: the DSL constructors (SPEC §1.3, §1.4, §2, §2.1 support functions, §3.9 cron dialect,
-- §6.3/§6.4 DSL-time HTTP checks). Every constructor returns an *envelope*: compact JSON text.
--
-- Errors (stable SQLSTATEs): 22023 bad DSL argument, PF001 malformed envelope, 55000 helper trap and
-- HTTP disabled, 22004 a NULL where pg_durable takes a non-NULL argument of a non-STRICT function.
--
-- Internal helpers defined here (not executable by PUBLIC; a role that is not the schema owner needs
-- EXECUTE on the ones its public calls reach — see the grant note at the end of this file):
--   df._node_types()                 the 12 node types, in pg_durable's order
--   df._envelope(...)                builds envelope text from parts (§1.3)
--   df._envelope_fields(json)        parses one envelope level (children kept as raw text) + error detail
--   df._ensure_fields(text, bool)    ensure (§1.4) returning the parts
--   df._ensure(text, bool)           ensure (§1.4) returning envelope text
--   df._mark_helper(text)            sets the §1.4 helper-trap marker
--   df._json_compact(jsonb)          jsonb → compact JSON text (no spaces outside strings)
--   df._cron_validate(text)          §3.9 cron dialect check
--   df._http_policy()                the validated pg_durable.http_policy setting (§9)
--   df._http_check(...)              the shared DSL-time checks of df.http / df.http_multipart

CREATE FUNCTION df._node_types() RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN ARRAY['SQL', 'THEN', 'IF', 'JOIN', 'LOOP', 'BREAK', 'RACE', 'SLEEP', 'WAIT_SCHEDULE',
                 'HTTP', 'HTTP_MULTIPART', 'SIGNAL'];
END
$$;
COMMENT ON FUNCTION df._node_types() IS 'The 12 valid node_type values, in the order the Unknown node_type error lists them.';

-- One envelope level, as parsed (children are the exact JSON text of each child object).
CREATE TYPE df._envelope_parts AS (
    node_type      text,
    left_node      text,
    right_node     text,
    condition_node text,
    extra_nodes    text[],
    query          text,
    result_name    text,
    options        text,   -- pgflare's per-node options object ("pgflare" key), compact JSON text
    error          text    -- NULL when the level parsed; else the deserialisation problem
);

-- §1.3: compact JSON, keys in a fixed order, absent (NULL / empty extra_nodes) keys omitted, children
-- embedded verbatim, strings escaped by to_json (same escapes as serde_json).
CREATE FUNCTION df._envelope(
    p_node_type text,
    p_left_node text DEFAULT NULL,
    p_right_node text DEFAULT NULL,
    p_condition_node text DEFAULT NULL,
    p_extra_nodes text[] DEFAULT NULL,
    p_query text DEFAULT NULL,
    p_result_name text DEFAULT NULL,
    p_options text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- What "parses as an envelope" means (pg_durable deserialises into its Durofut struct; this mirrors it
-- for one level, visiting keys in input order so the first problem is the one reported):
--   * the JSON value is an object (else: invalid type: <x>, expected struct Durofut);
--   * node_type is present (missing field `node_type`) and a string (invalid type: <x>, expected a string);
--   * left_node / right_node are null/absent or objects (Durofut children must be JSON objects);
--   * condition_node is null/absent or an object (condition_node must be a Durofut JSON object);
--   * extra_nodes is absent or an array (invalid type: <x>, expected a sequence) of objects
--     (extra_nodes entries must be Durofut JSON objects); null is NOT accepted, [] is;
--   * query / result_name are null/absent or strings (invalid type: <x>, expected a string);
--   * none of these seven keys appears twice (duplicate field `<k>`); other keys are ignored.
-- node_type is not checked against the 12 types here (callers decide). Children are not parsed: their
-- text is kept verbatim and checked when they are themselves ensured or materialised.
-- Deviation: serde's " at line L column C" suffix is not reproduced.
CREATE FUNCTION df._envelope_fields(p_json json) RETURNS df._envelope_parts
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- serde's wording for an unexpected JSON value in "invalid type: …" messages.
CREATE FUNCTION df._json_unexpected(p_value json) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- The helper-trap marker's time part: statement start in microseconds since 2000-01-01 (the same
-- number pg_durable writes), so a marker only matches within the statement that set it.
CREATE FUNCTION df._helper_stamp() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN ((extract(epoch FROM statement_timestamp()) - 946684800) * 1000000)::bigint::text;
END
$$;

-- §1.4 helper trap: df.setvar, df.unsetvar, df.clearvars and df.await_instance call this after they
-- succeed, passing their name WITHOUT parentheses: 'df.setvar', 'df.unsetvar', 'df.clearvars',
-- 'df.await_instance' (pg_durable's names), giving e.g. "df.setvar cannot be used as a workflow step.
-- Call df.setvar before df.start()." when their return value is then used as a workflow step.
CREATE FUNCTION df._mark_helper(p_helper text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('df.non_future_helper', p_helper || E'\n' || df._helper_stamp(), true);
END
$$;

-- §1.4 ensure, returning the parts of the node. Plain text (not starting with '{' after JSON
-- whitespace), invalid JSON, JSON without a string node_type, and (non-strict) an envelope with an
-- unknown node_type become a SQL node holding the whole string. A JSON object with a string node_type
-- that fails df._envelope_fields is an error. p_strict = true is df.start's top-level variant.
-- Parsed envelopes come back canonical (pg_durable re-serialises the top level: §1.3 key order, no
-- spaces, unknown keys dropped) while their children keep their exact text.
CREATE FUNCTION df._ensure_fields(p_input text, p_strict boolean DEFAULT false) RETURNS df._envelope_parts
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- §1.4 ensure as envelope text (see df._ensure_fields). NULL in → NULL out.
CREATE FUNCTION df._ensure(p_input text, p_strict boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_node df._envelope_parts := df._ensure_fields(p_input, p_strict);
BEGIN
    IF v_node.node_type IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN df._envelope(v_node.node_type, v_node.left_node, v_node.right_node, v_node.condition_node,
                        v_node.extra_nodes, v_node.query, v_node.result_name, v_node.options);
END
$$;

-- jsonb has no compact output form; drop the whitespace jsonb puts outside string literals.
CREATE FUNCTION df._json_compact(p_value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN regexp_replace(p_value::text, '("(?:[^"\\]|\\.)*")|\s+', '\1', 'g');
END
$$;

-- ---------------------------------------------------------------------------------------------------
-- Cron (§3.9): pg_durable parses '0 ' || expr with the Rust cron crate, so the user writes 5 fields
-- (minute hour day-of-month month day-of-week) plus an optional 6th (year). Per field: '*', numbers,
-- names (JAN-DEC, SUN-SAT; case-insensitive), ranges a-b (start <= end), steps (*/s, a/s, a-b/s with
-- s >= 1), comma lists; '?' only in day of month / day of week. Day of week 1 = Sunday … 7 = Saturday.
-- ---------------------------------------------------------------------------------------------------

-- The problem with one cron field, or NULL when it is valid. p_names[i] names the value p_min + i - 1.
CREATE FUNCTION df._cron_field(p_field text, p_label text, p_min integer, p_max integer,
                               p_names text[] DEFAULT NULL, p_question boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df._cron_validate(p_expr text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- ---------------------------------------------------------------------------------------------------
-- HTTP policy at DSL time (§6.3, §6.4 rule 1, §9)
-- ---------------------------------------------------------------------------------------------------

CREATE FUNCTION df._http_policy() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_policy text := lower(btrim(df._setting('http_policy', 'disabled')));
BEGIN
    IF v_policy NOT IN ('disabled', 'azure', 'azure+test', 'allowlist', 'all') THEN
        RAISE EXCEPTION 'invalid pg_durable.http_policy ''%'': expected disabled, azure, azure+test, allowlist or all',
            df._setting('http_policy', 'disabled') USING ERRCODE = '22023';
    END IF;
    RETURN v_policy;
END
$$;

-- Shared checks of df.http / df.http_multipart, in pg_durable's order: disabled, URL scheme (only
-- when the URL has no '{' placeholder, and not under policy 'all'), method, timeout. Returns the
-- upper-cased method. p_function is 'df.http()' or 'df.http_multipart()'.
CREATE FUNCTION df._http_check(p_function text, p_url text, p_method text, p_methods text[],
                               p_timeout_seconds integer) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- ---------------------------------------------------------------------------------------------------
-- Public DSL (§2). Parameter names are pg_durable's (callers use named notation).
-- ---------------------------------------------------------------------------------------------------

CREATE FUNCTION df.sql(query text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('SQL', p_query => query);
END
$$;

CREATE FUNCTION df.seq(a text, b text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('THEN', df._ensure(a), df._ensure(b));
END
$$;

-- The name is checked before fut is ensured (pg_durable's order).
CREATE FUNCTION df."as"(fut text, name text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df."join"(a text, b text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('JOIN', df._ensure(a), df._ensure(b));
END
$$;

CREATE FUNCTION df.join3(a text, b text, c text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('JOIN', df._ensure(a), df._ensure(b), p_extra_nodes => ARRAY[df._ensure(c)]);
END
$$;

CREATE FUNCTION df.race(a text, b text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('RACE', df._ensure(a), df._ensure(b));
END
$$;

-- Ensured in pg_durable's order: condition, then, else.
CREATE FUNCTION df."if"(condition text, then_branch text, else_branch text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_condition text := df._ensure(condition);
    v_then text := df._ensure(then_branch);
    v_else text := df._ensure(else_branch);
BEGIN
    RETURN df._envelope('IF', v_then, v_else, v_condition);
END
$$;

-- The name is a literal and deliberately not validated (pg_durable doesn't).
CREATE FUNCTION df.if_rows(result_name text, then_branch text, else_branch text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('IF', df._ensure(then_branch), df._ensure(else_branch),
                        p_query => '{"condition_type":"result_has_rows","result_name":' || to_json(result_name)::text || '}');
END
$$;

-- Not STRICT: a NULL condition means an infinite loop.
CREATE FUNCTION df.loop(body text, condition text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF body IS NULL THEN
        RAISE EXCEPTION 'df.loop(): body cannot be NULL' USING ERRCODE = '22004';
    END IF;
    RETURN df._envelope('LOOP', df._ensure(body), p_condition_node => df._ensure(condition));
END
$$;

-- The value is a literal: not auto-wrapped, not substituted at run time.
CREATE FUNCTION df.break(value text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._envelope('BREAK', p_query => '{"break_value":' || coalesce(to_json(value)::text, 'null') || '}');
END
$$;

CREATE FUNCTION df.sleep(seconds bigint) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF seconds < 0 THEN
        RAISE EXCEPTION 'Sleep duration must be non-negative' USING ERRCODE = '22023';
    END IF;
    RETURN df._envelope('SLEEP', p_query => seconds::text);
END
$$;

-- Validated now; the next fire time is computed when the node runs (§3.9).
CREATE FUNCTION df.wait_for_schedule(cron_expr text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM df._cron_validate(cron_expr);
    RETURN df._envelope('WAIT_SCHEDULE', p_query => '{"cron_expr":' || to_json(cron_expr)::text || '}');
END
$$;

CREATE FUNCTION df.wait_for_signal(name text, timeout_seconds integer DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- EXECUTE is not granted to PUBLIC (§6.2); see df._http_check for the validation order.
CREATE FUNCTION df.http(url text, method text DEFAULT 'POST', body text DEFAULT NULL, headers jsonb DEFAULT NULL,
                        timeout_seconds integer DEFAULT 30) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- Part shape (name, data_b64, filename, content_type) is checked only at run time (§2).
CREATE FUNCTION df.http_multipart(url text, method text DEFAULT 'POST', parts jsonb DEFAULT NULL,
                                  headers jsonb DEFAULT NULL, timeout_seconds integer DEFAULT 30) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- ---------------------------------------------------------------------------------------------------
-- Operator support functions (§2.1); the operators themselves are in 0003_operators.sql.
-- Volatility is pg_durable's (IMMUTABLE), so constant operator expressions may be folded at plan time.
-- All functions in this file are plpgsql (as_op / loop_prefix_op are SQL in pg_durable): on PG <= 17 a
-- SQL-language function called from another function is re-planned per call, ~10x slower here.
-- ---------------------------------------------------------------------------------------------------

CREATE FUNCTION df.as_op(fut text, name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df."as"(fut, name);
END
$$;

-- cond ?> then: a partial-if marker (not a node) that !> completes; operands stay raw text.
CREATE FUNCTION df.if_then_op(condition text, then_branch text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN jsonb_build_object('_partial_if', true, 'condition', condition, 'then_branch', then_branch)::text;
END
$$;

CREATE FUNCTION df.if_else_op(partial_if text, else_branch text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.loop_prefix_op(body text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df.loop(body);
END
$$;

-- ---------------------------------------------------------------------------------------------------
-- Privileges. 0001 revokes EXECUTE from PUBLIC by default; the DSL is granted one function at a time.
-- df.http and df.http_multipart stay revoked (§6.2).
-- Note for df.grant_usage: these functions are SECURITY INVOKER, so a role other than the owner also
-- needs EXECUTE on the internal helpers they call: df._node_types(), df._envelope(text,text,text,text,
-- text[],text,text), df._envelope_fields(json), df._json_unexpected(json), df._helper_stamp(),
-- df._ensure_fields(text,boolean), df._ensure(text,boolean), df._json_compact(jsonb),
-- df._cron_field(text,text,integer,integer,text[],boolean), df._cron_validate(text), df._setting(text,text),
-- df._http_policy(), df._http_check(text,text,text,text[],integer), and df._mark_helper(text) (setvar & co).
-- ---------------------------------------------------------------------------------------------------

REVOKE EXECUTE ON FUNCTION df.http(text, text, text, jsonb, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION df.http_multipart(text, text, jsonb, jsonb, integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION df.sql(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.seq(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df."as"(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df."join"(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.join3(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.race(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df."if"(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.if_rows(text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.loop(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.break(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.sleep(bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.wait_for_schedule(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.wait_for_signal(text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.as_op(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.if_then_op(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.if_else_op(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.loop_prefix_op(text) TO PUBLIC;

-- ---------------------------------------------------------------------------------------------------
-- pgflare per-node options (beyond pg_durable). They ride in the envelope under the key "pgflare",
-- which pg_durable readers ignore, so the graph JSON keeps pg_durable's shape:
--   df.retry(step, max_attempts, backoff_seconds, max_backoff_seconds)  retry a failed step with
--     exponential backoff (full jitter), up to max_attempts attempts in all;
--   df.timeout(step, seconds)  statement_timeout for a SQL step (HTTP steps keep timeout_seconds).
CREATE FUNCTION df._with_options(p_step text, p_patch jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_node df._envelope_parts := df._ensure_fields(p_step);
BEGIN
    RETURN df._envelope(v_node.node_type, v_node.left_node, v_node.right_node, v_node.condition_node,
                        v_node.extra_nodes, v_node.query, v_node.result_name,
                        df._json_compact(coalesce(v_node.options::jsonb, '{}'::jsonb) || p_patch));
END
$$;

CREATE FUNCTION df.retry(step text, max_attempts integer, backoff_seconds numeric DEFAULT 1,
                         max_backoff_seconds numeric DEFAULT 300) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.timeout(step text, seconds numeric) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (df._ensure_fields(step)).node_type <> 'SQL' THEN
        RAISE EXCEPTION 'df.timeout: only SQL steps take a statement timeout, not % (HTTP steps have timeout_seconds)',
            (df._ensure_fields(step)).node_type USING ERRCODE = '22023';
    ELSIF seconds <= 0 THEN
        RAISE EXCEPTION 'df.timeout: seconds must be positive, got %', seconds USING ERRCODE = '22023';
    END IF;
    RETURN df._with_options(step, jsonb_build_object('timeout_seconds', seconds));
END
$$;
GRANT EXECUTE ON FUNCTION df.retry(text, integer, numeric, numeric) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.timeout(text, numeric) TO PUBLIC;
