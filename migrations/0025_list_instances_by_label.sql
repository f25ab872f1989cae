-- 0025_list_instances_by_label: df.list_instances(label => 'nightly') works as users write it.
--
-- pg_durable's two overloads are (status_filter, limit_count) and (status_filter, limit_count,
-- label_filter, after_cursor), and neither has a parameter named "label" nor lets a call name only the
-- label. A third overload takes the label first, named `label`, with everything else defaulted, and returns
-- the paginated overload's columns.
--
-- No positional call changes meaning: the label has the domain type df.instance_label (text), so an
-- untyped literal or parameter, or a text or varchar value, in the first place prefers the existing
-- overloads' text parameter (text is the preferred type of its category), and limit_count comes second, as
-- in those overloads, so untyped parameters ($1, $2, …) never favour this one. A call reaches it by naming
-- "label". (Defaults for every parameter of an existing overload would make df.list_instances()
-- ambiguous instead.)

CREATE DOMAIN df.instance_label AS text;

CREATE FUNCTION df.list_instances(label df.instance_label, limit_count integer DEFAULT 100,
                                  status_filter text DEFAULT NULL, after_cursor text DEFAULT NULL)
RETURNS TABLE (instance_id text, label text, function_name text, status text, execution_count bigint,
               output text, created_at timestamptz, completed_at timestamptz, next_cursor text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM df.list_instances($3, $2, $1::text, $4)
$$;

GRANT EXECUTE ON FUNCTION df.list_instances(df.instance_label, integer, text, text) TO PUBLIC;

COMMENT ON FUNCTION df.list_instances(df.instance_label, integer, text, text) IS
  'The caller''s instances with this label, newest first, paginated like df.list_instances(limit_count, status_filter, after_cursor): the form that df.list_instances(label => ...) resolves to.';
