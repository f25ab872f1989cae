-- 0032_list_role_limits_settings: df.list_role_limits() also lists the limits that come from
-- pg_durable.max_user_connections (0030), with a column naming where each limit comes from.
--
-- Roles listed: those with a df.set_role_limit row, those with a role-level setting, and, when the
-- setting is given for the database or the server, every role granted usage on schema df (the roles that
-- can start workflows), each with the limit the claim would apply to it (df._step_limit).
-- A function's result columns cannot change in place: dropped and made again, owner only as before.

DROP FUNCTION df.list_role_limits();

CREATE FUNCTION df.list_role_limits()
RETURNS TABLE (role text, max_concurrent_steps integer, source text, claims integer, leases integer, updated_at timestamptz)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;
REVOKE ALL ON FUNCTION df.list_role_limits() FROM PUBLIC;

COMMENT ON FUNCTION df.list_role_limits() IS
    'Owner only. Every role''s step limit in force (df.set_role_limit, else pg_durable.max_user_connections as it applies to the role), where it comes from, and the role''s steps in flight now.';
