-- 0031_claim_limits_check: df._limits_in_force() as PL/pgSQL, so its query plan is cached for the session.
--
-- Every claim asks it (df._claim, df._claim_many, the prepared wake-up claim). As a LANGUAGE sql function with
-- a SET clause it cannot be inlined, and PostgreSQL parses and plans such a function's body again in every
-- transaction that calls it: a claim is a transaction of its own, so each one paid that planning (the claim's
-- server time per step about doubled with 0030; bench/RESULTS.md). PL/pgSQL keeps the prepared plan of the
-- expression for the life of the session. Same answer, read live from df.role_limits, the session's setting
-- and pg_db_role_setting.

CREATE OR REPLACE FUNCTION df._limits_in_force() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM df.role_limits)
        OR coalesce(current_setting('pg_durable.max_user_connections', true), '') <> ''
        OR EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c
                    WHERE s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                      AND starts_with(c, 'pg_durable.max_user_connections='));
END
$$;

COMMENT ON FUNCTION df._limits_in_force() IS
    'Engine (worker only). Whether any step limit applies (df.role_limits rows or a pg_durable.max_user_connections setting); the claim takes its single-statement path when not. PL/pgSQL so that its plan is cached per session (0031).';
