-- 0013_webhooks: webhooks that start a named workflow (docs/WEBHOOKS.md).
--
--   df._hooks                  one row per webhook: its URL name, the workflow it starts, the signature
--                              scheme, the HMAC secret, limits; owned by the role that created it
--   df.hook_deliveries         one row per accepted delivery: (hook, delivery id) -> the instance it started
--   df.create_hook(..)         registers a webhook and returns its secret, once
--   df.rotate_hook_secret(..)  replaces the secret (generated when not given) and returns it, once
--   df.drop_hook(..)           removes a webhook and its delivery records (instances are not touched)
--   df.list_hooks()            the caller's webhooks, without secrets, with delivery counts
--   df._hook_for_delivery(..)  the API's lookup by name, secret included (only the owner of df._hooks reads it)
--   df.grant_usage / df.revoke_usage  now also grant / revoke the hook tables
--
-- Privileges: df.grant_usage grants a role the hook tables, every column of df._hooks but `secret`.
--
-- Who reads the secret: HMAC needs the secret itself (a hash would not do, unlike API tokens), so it is
-- stored as given. Column `secret` is granted to nobody: the role that created a hook can INSERT and
-- UPDATE it but never SELECT it (a RETURNING, WHERE or SET expression naming it is refused with 42501),
-- so after df.create_hook / df.rotate_hook_secret have returned it, no function or query gives it back.
-- Only the owner of df._hooks (the role that ran the migrations, which the API connects as) and
-- superusers read it, through df._hook_for_delivery, which is neither granted to PUBLIC nor SECURITY
-- DEFINER: another role calling it gets 42501 on the column. Backups of the database contain it.
--
-- Retention: a delivery row references its instance (ON DELETE CASCADE), so pruning history
-- (src/engine/sweep.ts pruneHistory) prunes deliveries with it; a redelivery after that starts anew.
--
-- SQLSTATEs raised here (stable; clients may match on them):
--   22023 invalid_parameter    bad name, scheme, secret, tolerance or body limit
--   22004 null_value           a required argument is NULL
--   P0002 no_data_found        unknown workflow (create) or unknown webhook (rotate, drop)
--   23505 unique_violation     a webhook of that name already exists (names are global: they are URLs)

CREATE TABLE df._hooks (
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    name              text        NOT NULL,
    owner             regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole,
    workflow          text        NOT NULL,
    scheme            text        NOT NULL,
    secret            text        NOT NULL,
    tolerance_seconds integer     NOT NULL DEFAULT 300,
    max_body_bytes    integer     NOT NULL DEFAULT 1048576,
    created_at        timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at timestamptz,
    CONSTRAINT _hooks_pkey PRIMARY KEY (id),
    CONSTRAINT _hooks_name_key UNIQUE (name),
    CONSTRAINT _hooks_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    CONSTRAINT _hooks_scheme_check CHECK (scheme IN ('github', 'stripe', 'hmac')),
    CONSTRAINT _hooks_secret_check CHECK (length(secret) BETWEEN 16 AND 512),
    CONSTRAINT _hooks_tolerance_check CHECK (tolerance_seconds BETWEEN 1 AND 86400),
    CONSTRAINT _hooks_max_body_check CHECK (max_body_bytes BETWEEN 1 AND 16777216)
);

ALTER TABLE df._hooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY _hooks_owner ON df._hooks FOR ALL
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole);
-- Roles get these tables through df.grant_usage (below): every column but `secret`, which is write-only.
REVOKE ALL ON df._hooks FROM PUBLIC;

CREATE TABLE df.hook_deliveries (
    hook_id     bigint      NOT NULL,
    -- X-GitHub-Delivery, the Stripe event id, X-Delivery-Id …; NULL when the sender gave none (no dedupe)
    delivery_id text,
    instance_id varchar(8)  NOT NULL,
    owner       regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hook_deliveries_hook_delivery_key UNIQUE (hook_id, delivery_id),
    CONSTRAINT hook_deliveries_delivery_id_check CHECK (length(delivery_id) BETWEEN 1 AND 200),
    CONSTRAINT hook_deliveries_hook_fkey FOREIGN KEY (hook_id) REFERENCES df._hooks (id) ON DELETE CASCADE,
    -- Same owner as the instance; pruning the instance prunes the delivery.
    CONSTRAINT hook_deliveries_instance_fkey FOREIGN KEY (instance_id, owner)
        REFERENCES df.instances (id, submitted_by) ON DELETE CASCADE
);
CREATE INDEX hook_deliveries_instance_idx ON df.hook_deliveries (instance_id);
CREATE INDEX hook_deliveries_hook_received_idx ON df.hook_deliveries (hook_id, received_at DESC);

ALTER TABLE df.hook_deliveries ENABLE ROW LEVEL SECURITY;
-- A delivery row may only name one of the caller's own hooks (the subquery sees only those).
CREATE POLICY hook_deliveries_owner ON df.hook_deliveries FOR ALL
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole
                AND EXISTS (SELECT 1 FROM df._hooks h WHERE h.id = hook_id));
REVOKE ALL ON df.hook_deliveries FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- df.grant_usage / df.revoke_usage also cover the hook tables. Instead of restating the previous
-- migrations' version (each one extends it), that version is kept under an internal name and the new
-- one calls it first, so this composes with whatever 0011 and 0012 define. Roles granted before this
-- migration need df.grant_usage again to manage hooks. _usage_functions leaves the kept versions out
-- of what roles are granted, like grant_usage itself.
ALTER FUNCTION df.grant_usage(text, boolean, boolean) RENAME TO _grant_usage_before_0013;
ALTER FUNCTION df.revoke_usage(text) RENAME TO _revoke_usage_before_0013;

CREATE OR REPLACE FUNCTION df._usage_functions(p_include_http boolean, p_with_grant boolean) RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'df'
       -- engine internals: only the worker (the schema owner) runs them
       AND p.proname NOT IN ('_apply', '_lock_and_load', '_claim', '_usage_functions')
       AND p.proname !~ '^_(grant|revoke)_usage_'
       AND (p_include_http OR p.proname NOT IN ('http', 'http_multipart'))
       AND (p_with_grant OR p.proname NOT IN ('metrics', 'grant_usage', 'revoke_usage'))
$$;

CREATE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
BEGIN
    PERFORM df._grant_usage_before_0013(p_role, include_http, with_grant);
    -- `secret` is INSERT/UPDATE only: nobody but the table owner reads it back.
    EXECUTE format('GRANT SELECT (id, name, owner, workflow, scheme, tolerance_seconds, max_body_bytes, created_at, secret_rotated_at), '
                   'INSERT (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes), UPDATE (secret, secret_rotated_at), DELETE '
                   'ON df._hooks TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (hook_id, delivery_id, instance_id), DELETE ON df.hook_deliveries TO %I%s', p_role, v_opt);
END
$$;

CREATE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Exactly what grant_usage granted: REVOKE ALL would also name columns never granted (the system
    -- columns of df._hooks, whose SELECT is column-level), which a delegate may not revoke.
    EXECUTE format('REVOKE SELECT (id, name, owner, workflow, scheme, tolerance_seconds, max_body_bytes, created_at, secret_rotated_at), '
                   'INSERT (name, workflow, scheme, secret, tolerance_seconds, max_body_bytes), UPDATE (secret, secret_rotated_at), DELETE '
                   'ON df._hooks FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE SELECT, INSERT (hook_id, delivery_id, instance_id), DELETE ON df.hook_deliveries FROM %I CASCADE', p_role);
    PERFORM df._revoke_usage_before_0013(p_role);
END
$$;

REVOKE EXECUTE ON FUNCTION df.grant_usage(text, boolean, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION df.revoke_usage(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------

-- Argument checks shared by create and rotate; NULL arguments are checked by the callers.
CREATE FUNCTION df._hook_check(p_name text, p_scheme text, p_secret text, p_tolerance integer, p_max_body integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

-- 'whsec_' || base64url of 32 random bytes (same construction as df.create_api_token).
CREATE FUNCTION df._new_hook_secret() RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'whsec_' || rtrim(translate(encode(sha256(decode(
               replace(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
               'hex')), 'base64'), '+/', '-_'), '=')
$$;

CREATE FUNCTION df.create_hook(name text, workflow text, scheme text, secret text DEFAULT NULL,
                               tolerance_seconds integer DEFAULT 300, max_body_bytes integer DEFAULT 1048576)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.rotate_hook_secret(name text, secret text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.drop_hook(name text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;

CREATE FUNCTION df.list_hooks()
RETURNS TABLE (name text, workflow text, scheme text, tolerance_seconds integer, max_body_bytes integer,
               created_at timestamptz, secret_rotated_at timestamptz, deliveries bigint, last_delivery_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.name, h.workflow, h.scheme, h.tolerance_seconds, h.max_body_bytes, h.created_at, h.secret_rotated_at,
           (SELECT count(*) FROM df.hook_deliveries AS d WHERE d.hook_id = h.id),
           (SELECT max(d.received_at) FROM df.hook_deliveries AS d WHERE d.hook_id = h.id)
      FROM df._hooks AS h
     ORDER BY h.name
$$;

-- The API's lookup, run as the connecting role before it switches to the hook's owner. Not SECURITY
-- DEFINER: only the owner of df._hooks (or a superuser) may read `secret`; anyone else gets 42501.
CREATE FUNCTION df._hook_for_delivery(p_name text)
RETURNS TABLE (id bigint, owner text, workflow text, scheme text, secret text, tolerance_seconds integer, max_body_bytes integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.id, r.rolname::text, h.workflow, h.scheme, h.secret, h.tolerance_seconds, h.max_body_bytes
      FROM df._hooks AS h
      JOIN pg_catalog.pg_roles AS r ON r.oid = h.owner
     WHERE h.name = p_name
$$;

GRANT EXECUTE ON FUNCTION df.create_hook(text, text, text, text, integer, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.rotate_hook_secret(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.drop_hook(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.list_hooks() TO PUBLIC;
