-- 0010_api: what the REST API (src/api) needs in the database.
--
--   df._api_tokens           bearer tokens: a name, the SHA-256 of the token (never the token), the role
--                            the token acts as; revoked tokens are kept (revoked_at) for the record
--   df.create_api_token(..)  makes a token and returns its plaintext once
--   df.revoke_api_token(..)  revokes an active token by name
--   df._api_token_role(..)   the API's lookup: token hash -> role name (NULL when unknown or revoked)
--   df._eval_dsl(..)         evaluates DSL text received over HTTP, after checking it is only DSL
--
-- Who may create tokens for whom: a role may create and revoke tokens for itself; only the owner of
-- df._api_tokens (the role that installed pgflare, or a member of it) and superusers may create or
-- revoke tokens for another role. Row-level security enforces the same rule on the table itself.
-- The API connects as the owner of schema df (or a member of it: only the owner reads token hashes)
-- and does SET LOCAL ROLE to a token's role, so the connecting role must also be a member of that role
-- (the API answers 403 otherwise). Static tokens (PGFLARE_API_TOKENS) need no table access.
--
-- SQLSTATEs raised here (stable; clients may match on them):
--   PF002 invalid_workflow     DSL text that is not made only of DSL (df._eval_dsl)
--   22023 invalid_parameter    empty or oversize token name
--   42704 undefined_object     unknown role
--   42501 insufficient_privilege  a token for another role, by a role that may not make one
--   23505 unique_violation     an active token of that name already exists for the role
--   P0002 no_data_found        revoke: no active token of that name

CREATE TABLE df._api_tokens (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    name        text        NOT NULL,
    token_hash  text        NOT NULL,
    role        regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT _api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT _api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT _api_tokens_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT _api_tokens_name_check CHECK (btrim(name) <> '' AND length(name) <= 200)
);
-- One active token per (role, name); a revoked name may be reused.
CREATE UNIQUE INDEX _api_tokens_role_name_key ON df._api_tokens (role, name) WHERE revoked_at IS NULL;

ALTER TABLE df._api_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY _api_tokens_owner ON df._api_tokens FOR ALL
    USING (role = quote_ident(current_user)::regrole)
    WITH CHECK (role = quote_ident(current_user)::regrole);
-- USAGE on schema df stays the gate; the hash column is never readable by other roles.
REVOKE ALL ON df._api_tokens FROM PUBLIC;
GRANT SELECT (id, name, role, created_at, revoked_at), INSERT (name, token_hash, role), UPDATE (revoked_at)
    ON df._api_tokens TO PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Tokens

-- True when the current user may manage tokens of every role (owner of the token table, or superuser).
CREATE FUNCTION df._api_token_admin() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false)
        OR pg_catalog.pg_has_role(current_user,
                                  (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'df._api_tokens'::regclass),
                                  'USAGE')
$$;

-- The role named by p_role (an exact role name, not an identifier), checked against the caller's rights.
CREATE FUNCTION df._api_token_target(p_role text) RETURNS regrole
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- 'pgf_' || base64url of 32 random bytes (the SHA-256 of three random UUIDs: 366 random bits in, so
-- all 256 bits out are random; pgcrypto is not required). Only the SHA-256 of the token is stored.
CREATE FUNCTION df.create_api_token(name text, role text DEFAULT current_user) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.revoke_api_token(name text, role text DEFAULT current_user) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- The API's lookup, run as the connecting role before it switches to the token's role. Not SECURITY
-- DEFINER: the API connects as the owner of schema df (or a member of it), which reads every role's
-- tokens past row-level security; any other role cannot read token_hash and gets 42501.
CREATE FUNCTION df._api_token_role(p_token_hash text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolname::text
      FROM df._api_tokens AS t
      JOIN pg_catalog.pg_roles AS r ON r.oid = t.role
     WHERE t.token_hash = p_token_hash AND t.revoked_at IS NULL
$$;

GRANT EXECUTE ON FUNCTION df.create_api_token(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.revoke_api_token(text, text) TO PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- DSL text from HTTP.
--
-- Running `SELECT <text from a request>` would run any SQL. df._eval_dsl first splits the text into
-- tokens and accepts only: string literals ('…', '' inside; standard_conforming_strings is pinned on, so
-- a backslash is an ordinary character), numbers (optionally negative), NULL/TRUE/FALSE, the operators
-- ~> |=> & | ?> !> @>, parentheses and commas (commas only inside parentheses), calls of the DSL
-- functions below (the name must be followed by '('), named arguments (`name => …`, inside calls only)
-- and casts to a few built-in types. Anything else — other identifiers and functions, keywords,
-- ';', comments, quoted identifiers, E'' / U&'' / $$ strings, '.', '/', '*' — is rejected with PF002
-- before anything runs. The statement executed is rebuilt from the accepted tokens, one space between
-- each, wrapped as `SELECT (…)::text`, with search_path pinned (pg_catalog first, then the operator
-- schema), so what runs is exactly what was checked. It runs as the caller (SECURITY INVOKER).
CREATE FUNCTION df._eval_dsl(p_expr text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @operator_schema@, pg_temp
SET standard_conforming_strings = on
AS $$
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
$$;
