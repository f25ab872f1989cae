-- 0012_schedules: cron schedules that start a named workflow (issue 6 item 3).
--
--   df.schedules                      one row per (owner, name): workflow, cron, time zone, input, policies,
--                                     paused, next_fire_at, last fire, last instance, last error
--   df.schedule_fires                 one row per (schedule, fire_at): what the sweeper did at that due
--                                     time (started / skipped_overlap / missed / failed). The primary key
--                                     is the double-fire guard: two sweepers can never both record a due time
--   df.create_schedule(..)            validates and stores a schedule; returns its first fire time
--   df.alter_schedule(..)             changes workflow/cron/time zone/input/policies; recomputes next_fire_at
--   df.pause_schedule(name)           no fires until resumed
--   df.resume_schedule(name)          fires again from the next due time after now (no catch-up of the pause)
--   df.drop_schedule(name)            removes the schedule and its fire history
--   df.list_schedules()               the caller's schedules with next/last fire and the last instance's status
--   df.schedule_history(name, n)      the newest n fires of a schedule
--   df.cron_next_fire(cron, tz, after) the first fire time strictly after `after` (NULL: never again)
--
-- Cron: standard 5-field cron (minute hour day-of-month month day-of-week), Vixie semantics: `*`, lists,
-- ranges, steps, three-letter names (jan, mon), day of week 0-7 (0 and 7 = Sunday), and day of month /
-- day of week OR-ed when both are restricted (neither starts with `*`); @yearly @annually @monthly
-- @weekly @daily @midnight @hourly. The fields are wall-clock time in an IANA time zone
-- (pg_timezone_names). The same parser and search exist in TypeScript (parseStandardCron /
-- nextFireInZone in src/graph/cron.ts) and test/schedules/cron-sql.test.ts holds the two to agreement.
--
-- Daylight saving (deterministic): a wall time that a spring-forward gap skips fires once, at the first
-- instant after the gap (02:30 in New York on a March change fires at 03:00 EDT); a wall time that a
-- fall-back repeats fires once, at its first occurrence (01:30 EDT, not again at 01:30 EST).
--
-- Firing is done by the worker (src/engine/schedules.ts), which owns these tables and therefore reads
-- every role's rows. A role sees and changes only its own schedules (RLS, like df.instances); each
-- schedule's instance is started as its owner.
--
-- SQLSTATEs raised here (stable; clients may match on them):
--   22023 invalid_parameter_value   bad name, cron, time zone, missed or overlap policy
--   22004 null_value_not_allowed    a required argument is NULL
--   P0002 no_data_found             no such schedule (or not the caller's); unknown workflow
--   23505 unique_violation          the caller already has a schedule of that name

CREATE TABLE df.schedules (
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    name             text        NOT NULL,
    owner            regrole     NOT NULL DEFAULT quote_ident(current_user)::regrole,
    workflow         text        NOT NULL,
    cron             text        NOT NULL,
    timezone         text        NOT NULL DEFAULT 'UTC',
    input            jsonb,
    missed           text        NOT NULL DEFAULT 'skip',
    overlap          text        NOT NULL DEFAULT 'skip',
    paused           boolean     NOT NULL DEFAULT false,
    next_fire_at     timestamptz,
    last_fire_at     timestamptz,
    last_instance_id varchar,
    last_error       text,
    last_error_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_pkey PRIMARY KEY (id),
    CONSTRAINT schedules_owner_name_key UNIQUE (owner, name),
    CONSTRAINT schedules_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    CONSTRAINT schedules_missed_check CHECK (missed IN ('skip', 'catch_up_once')),
    CONSTRAINT schedules_overlap_check CHECK (overlap IN ('skip', 'allow'))
);
-- The sweeper's claim reads the head of this index: due, unpaused schedules in due order.
CREATE INDEX schedules_due_idx ON df.schedules (next_fire_at) WHERE NOT paused AND next_fire_at IS NOT NULL;

CREATE TABLE df.schedule_fires (
    schedule_id bigint      NOT NULL,
    fire_at     timestamptz NOT NULL,
    owner       regrole     NOT NULL,
    outcome     text        NOT NULL,
    instance_id varchar,
    error       text,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedule_fires_pkey PRIMARY KEY (schedule_id, fire_at),
    CONSTRAINT schedule_fires_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES df.schedules (id) ON DELETE CASCADE,
    CONSTRAINT schedule_fires_outcome_check CHECK (outcome IN ('started', 'skipped_overlap', 'missed', 'failed'))
);

ALTER TABLE df.schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY schedules_owner ON df.schedules FOR ALL
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole);
ALTER TABLE df.schedule_fires ENABLE ROW LEVEL SECURITY;
CREATE POLICY schedule_fires_owner ON df.schedule_fires FOR ALL
    USING (owner = quote_ident(current_user)::regrole)
    WITH CHECK (owner = quote_ident(current_user)::regrole);

REVOKE ALL ON df.schedules, df.schedule_fires FROM PUBLIC;

-- Roles set up by df.grant_usage also get the schedule tables (0011's version plus two grants).
-- Roles granted before this migration need df.grant_usage again (for the tables and the new helpers).
CREATE OR REPLACE FUNCTION df.grant_usage(p_role text, include_http boolean DEFAULT false, with_grant boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opt text := CASE WHEN with_grant THEN ' WITH GRANT OPTION' ELSE '' END;
    v_fn regprocedure;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA df TO %I%s', p_role, v_opt);
    FOR v_fn IN SELECT * FROM df._usage_functions(include_http, with_grant) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I%s', v_fn, p_role, v_opt);
    END LOOP;
    EXECUTE format('GRANT SELECT, UPDATE (status, updated_at, input), INSERT (id, label, root_node, submitted_by, database, vars, input) ON df.instances TO %I%s', p_role, v_opt);
    -- UPDATE (run_at): df.cancel withdraws queued work, df.signal wakes a waiting node. The engine runs
    -- only leaves it activated itself (status running, a live scope), so a hand-set run_at does nothing.
    EXECUTE format('GRANT SELECT, INSERT (id, instance_id, node_type, query, result_name, left_node, right_node, submitted_by, database, run_at, options), UPDATE (run_at) ON df.nodes TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON df.vars TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (instance_id, signal_name, payload, submitted_by) ON df.signals TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.scopes, df.events TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT, INSERT (name, version, graph, description), DELETE ON df.workflows TO %I%s', p_role, v_opt);
    -- Schedules: a role writes only what the schedule functions write; fires and last_* are the worker's.
    EXECUTE format('GRANT SELECT, DELETE, INSERT (name, workflow, cron, timezone, input, missed, overlap, next_fire_at), UPDATE (workflow, cron, timezone, input, missed, overlap, paused, next_fire_at, last_error, last_error_at, updated_at) ON df.schedules TO %I%s', p_role, v_opt);
    EXECUTE format('GRANT SELECT ON df.schedule_fires TO %I%s', p_role, v_opt);
    RAISE NOTICE 'pg_durable: granted df usage privileges to "%"', p_role;
END
$$;

CREATE OR REPLACE FUNCTION df.revoke_usage(p_role text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN SELECT * FROM df._usage_functions(true, true) LOOP
        BEGIN
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I CASCADE', v_fn, p_role);
        EXCEPTION WHEN insufficient_privilege THEN
            NULL; -- the sensitive functions may never have been granted by this role
        END;
    END LOOP;
    EXECUTE format('REVOKE ALL ON df.instances, df.nodes, df.vars, df.signals, df.scopes, df.events, df.workflows, df.schedules, df.schedule_fires FROM %I CASCADE', p_role);
    EXECUTE format('REVOKE USAGE ON SCHEMA df FROM %I CASCADE', p_role);
    RAISE NOTICE 'pg_durable: revoked df usage privileges granted by "%" from "%"', current_user, p_role;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Cron (standard dialect)

-- One field's matching values, sorted; raises 22023 naming the field and the problem (the messages
-- are parseStandardCron's, src/graph/cron.ts). p_names[i] names the value p_min + i - 1.
CREATE FUNCTION df._cron_std_field(p_expr text, p_text text, p_label text, p_min integer, p_max integer,
                                   p_names text[] DEFAULT NULL)
RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_item   text;
    v_parts  text[];
    v_base   text;
    v_step   integer;
    v_tokens text[];
    v_token  text;
    v_vals   integer[];
    v_n      numeric;
    v_pos    integer;
    v_lo     integer;
    v_hi     integer;
    v_out    integer[] := '{}';
    v_fail   text;
BEGIN
    <<items>>
    FOREACH v_item IN ARRAY string_to_array(p_text, ',') LOOP
        IF v_item = '' THEN
            v_fail := 'empty list item';
            EXIT;
        END IF;
        v_parts := string_to_array(v_item, '/');
        IF cardinality(v_parts) > 2 THEN
            v_fail := format('''%s'' has more than one ''/''', v_item);
            EXIT;
        END IF;
        v_base := v_parts[1];
        v_step := 1;
        IF cardinality(v_parts) = 2 THEN
            IF v_parts[2] !~ '^[0-9]+$' THEN
                v_fail := format('step ''%s'' is not a number', v_parts[2]);
                EXIT;
            END IF;
            v_step := least(v_parts[2]::numeric, 1000)::integer;
            IF v_step = 0 THEN
                v_fail := 'range step cannot be zero';
                EXIT;
            END IF;
        END IF;
        IF v_base = '*' THEN
            v_lo := p_min;
            v_hi := p_max;
        ELSIF v_base = '?' THEN
            v_fail := '''?'' is only allowed in the day-of-month and day-of-week fields';
            EXIT;
        ELSE
            IF strpos(v_base, '-') > 0 THEN
                v_tokens := string_to_array(v_base, '-');
                IF cardinality(v_tokens) <> 2 OR v_tokens[1] = '' OR v_tokens[2] = '' THEN
                    v_fail := format('''%s'' is not a valid range', v_base);
                    EXIT;
                END IF;
            ELSE
                v_tokens := ARRAY[v_base];
            END IF;
            v_vals := '{}';
            FOREACH v_token IN ARRAY v_tokens LOOP
                IF v_token ~ '^[0-9]+$' THEN
                    v_n := v_token::numeric;
                    IF v_n < p_min THEN
                        v_fail := format('%s is below the minimum %s', v_n, p_min);
                        EXIT items;
                    ELSIF v_n > p_max THEN
                        v_fail := format('%s is above the maximum %s', v_n, p_max);
                        EXIT items;
                    END IF;
                    v_vals := v_vals || v_n::integer;
                ELSIF v_token ~ '^[A-Za-z]+$' THEN
                    v_pos := array_position(p_names, lower(v_token));
                    IF v_pos IS NULL THEN
                        v_fail := CASE WHEN p_names IS NULL
                                       THEN format('names are not allowed in this field (''%s'')', v_token)
                                       ELSE format('unknown name ''%s''', v_token) END;
                        EXIT items;
                    END IF;
                    v_vals := v_vals || (p_min + v_pos - 1);
                ELSE
                    v_fail := format('''%s'' is not a number%s', v_token, CASE WHEN p_names IS NULL THEN '' ELSE ' or name' END);
                    EXIT items;
                END IF;
            END LOOP;
            IF cardinality(v_vals) = 2 THEN
                IF v_vals[1] > v_vals[2] THEN
                    v_fail := format('range %s starts after it ends', v_base);
                    EXIT;
                END IF;
                v_lo := v_vals[1];
                v_hi := v_vals[2];
            ELSE
                IF cardinality(v_parts) = 2 AND v_base !~ '^[0-9]+$' THEN
                    v_fail := 'a step needs ''*'', a range or a number before ''/''';
                    EXIT;
                END IF;
                v_lo := v_vals[1];
                -- `5/15` = from 5 to the maximum, every 15.
                v_hi := CASE WHEN cardinality(v_parts) = 2 THEN p_max ELSE v_vals[1] END;
            END IF;
        END IF;
        v_out := v_out || ARRAY(SELECT generate_series(v_lo, v_hi, v_step));
    END LOOP;
    IF v_fail IS NOT NULL THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': % field ''%'': %', p_expr, p_label, p_text, v_fail
            USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY(SELECT DISTINCT v FROM unnest(v_out) AS v ORDER BY v);
END
$$;

-- Parses standard cron into sorted value arrays; day of week 0 = Sunday (7 folds into 0). day_or is
-- Vixie's rule: dom and dow are OR-ed when neither field starts with `*` (`*/2` counts as `*`).
CREATE FUNCTION df._cron_std_parse(p_expr text, OUT minutes integer[], OUT hours integer[], OUT doms integer[],
                                   OUT months integer[], OUT dows integer[], OUT day_or boolean)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trimmed text;
    v_macro   text;
    v_fields  text[];
BEGIN
    IF p_expr IS NULL THEN
        RAISE EXCEPTION 'cron must not be NULL' USING ERRCODE = '22004';
    END IF;
    v_trimmed := btrim(p_expr, E' \t\n\r');
    v_macro := CASE lower(v_trimmed)
                   WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
                   WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
                   WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
                   WHEN '@hourly' THEN '0 * * * *' END;
    IF v_trimmed LIKE '@%' AND v_macro IS NULL THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': unknown shorthand ''%''', p_expr, v_trimmed USING ERRCODE = '22023';
    END IF;
    v_trimmed := coalesce(v_macro, v_trimmed);
    v_fields := CASE WHEN v_trimmed = '' THEN '{}'::text[] ELSE regexp_split_to_array(v_trimmed, E'[ \t\n\r]+') END;
    IF cardinality(v_fields) <> 5 THEN
        RAISE EXCEPTION 'Invalid cron expression ''%'': expected 5 fields (minute hour day-of-month month day-of-week), got %',
            p_expr, cardinality(v_fields) USING ERRCODE = '22023';
    END IF;
    minutes := df._cron_std_field(p_expr, v_fields[1], 'minute', 0, 59);
    hours := df._cron_std_field(p_expr, v_fields[2], 'hour', 0, 23);
    doms := df._cron_std_field(p_expr, v_fields[3], 'day of month', 1, 31);
    months := df._cron_std_field(p_expr, v_fields[4], 'month', 1, 12,
                                 ARRAY['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']);
    dows := df._cron_std_field(p_expr, v_fields[5], 'day of week', 0, 7,
                               ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']);
    dows := ARRAY(SELECT DISTINCT d % 7 FROM unnest(dows) AS d ORDER BY 1);
    day_or := v_fields[3] NOT LIKE '*%' AND v_fields[5] NOT LIKE '*%';
END
$$;

-- The canonical IANA name of a time zone (case-insensitive match in pg_timezone_names), or 22023.
-- POSIX strings such as 'UTC+3' (whose sign PostgreSQL inverts) and abbreviations are refused.
CREATE FUNCTION df._tz_canonical(p_tz text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
BEGIN
    IF p_tz IS NULL THEN
        RAISE EXCEPTION 'timezone must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT z.name INTO v_name FROM pg_catalog.pg_timezone_names z
     WHERE lower(z.name) = lower(p_tz) ORDER BY z.name = p_tz DESC, z.name LIMIT 1;
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'unknown time zone ''%''', p_tz USING ERRCODE = '22023',
            HINT = 'Use an IANA time zone name such as ''UTC'', ''Europe/Berlin'' or ''America/New_York'' (see pg_timezone_names).';
    END IF;
    RETURN v_name;
END
$$;

-- The instant a local wall time denotes in p_tz: the earlier one when it occurs twice (fall back); when
-- it does not exist (spring forward), the first instant after the gap. Mirrors wallToInstant (cron.ts).
CREATE FUNCTION df._cron_wall_to_instant(p_wall timestamp, p_tz text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_naive  timestamptz := p_wall AT TIME ZONE 'UTC';
    v_a      timestamptz;
    v_b      timestamptz;
    v_lo     timestamptz;
    v_hi     timestamptz;
    v_mid    timestamptz;
    v_lo_off interval;
BEGIN
    -- The offsets a day before and after; the wall time is one of these two readings if it exists.
    v_a := v_naive - (((v_naive - interval '1 day') AT TIME ZONE p_tz) - ((v_naive - interval '1 day') AT TIME ZONE 'UTC'));
    v_b := v_naive - (((v_naive + interval '1 day') AT TIME ZONE p_tz) - ((v_naive + interval '1 day') AT TIME ZONE 'UTC'));
    IF (least(v_a, v_b) AT TIME ZONE p_tz) = p_wall THEN
        RETURN least(v_a, v_b);
    ELSIF (greatest(v_a, v_b) AT TIME ZONE p_tz) = p_wall THEN
        RETURN greatest(v_a, v_b);
    END IF;
    -- In a gap: find the transition between the two readings, to the second.
    v_lo := least(v_a, v_b);
    v_hi := greatest(v_a, v_b);
    v_lo_off := (v_lo AT TIME ZONE p_tz) - (v_lo AT TIME ZONE 'UTC');
    WHILE v_hi - v_lo > interval '1 second' LOOP
        v_mid := date_trunc('second', v_lo + (v_hi - v_lo) / 2);
        IF (v_mid AT TIME ZONE p_tz) - (v_mid AT TIME ZONE 'UTC') = v_lo_off THEN
            v_lo := v_mid;
        ELSE
            v_hi := v_mid;
        END IF;
    END LOOP;
    RETURN v_hi;
END
$$;

-- The first wall-clock minute at or after p_from that matches, or NULL when there is none up to the
-- end of p_last_year. Skips whole months and days, so an impossible expression costs a few hundred steps.
CREATE FUNCTION df._cron_next_wall(p_minutes integer[], p_hours integer[], p_doms integer[], p_months integer[],
                                   p_dows integer[], p_day_or boolean, p_from timestamp, p_last_year integer)
RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_day    date := p_from::date;
    v_hour   integer := extract(hour FROM p_from)::integer;
    v_minute integer := extract(minute FROM p_from)::integer;
    v_dom_ok boolean;
    v_dow_ok boolean;
    v_h      integer;
    v_m      integer;
BEGIN
    WHILE extract(year FROM v_day) <= p_last_year LOOP
        IF NOT (extract(month FROM v_day)::integer = ANY (p_months)) THEN
            v_day := (date_trunc('month', v_day) + interval '1 month')::date;
            v_hour := 0;
            v_minute := 0;
            CONTINUE;
        END IF;
        v_dom_ok := extract(day FROM v_day)::integer = ANY (p_doms);
        v_dow_ok := extract(dow FROM v_day)::integer = ANY (p_dows);
        IF (p_day_or AND (v_dom_ok OR v_dow_ok)) OR (NOT p_day_or AND v_dom_ok AND v_dow_ok) THEN
            FOREACH v_h IN ARRAY p_hours LOOP
                CONTINUE WHEN v_h < v_hour;
                SELECT min(m) INTO v_m FROM unnest(p_minutes) AS m WHERE v_h > v_hour OR m >= v_minute;
                IF v_m IS NOT NULL THEN
                    RETURN v_day + make_time(v_h, v_m, 0);
                END IF;
            END LOOP;
        END IF;
        v_day := v_day + 1;
        v_hour := 0;
        v_minute := 0;
    END LOOP;
    RETURN NULL;
END
$$;

-- The first fire time strictly after p_after of parsed cron fields read as wall time in p_tz (a
-- canonical zone); NULL when nothing matches within 10 years (e.g. '0 0 30 2 *'). Mirrors nextFireInZone.
CREATE FUNCTION df._cron_fire_after(p_minutes integer[], p_hours integer[], p_doms integer[], p_months integer[],
                                    p_dows integer[], p_day_or boolean, p_tz text, p_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_local  timestamp := date_trunc('minute', p_after AT TIME ZONE p_tz);
    v_last   integer := extract(year FROM v_local)::integer + 10;
    v_cursor timestamp := v_local + interval '1 minute';
    v_wall   timestamp;
    v_t      timestamptz;
BEGIN
    -- A candidate whose instant is not after p_after (the repeated hour of a fall-back) moves the
    -- cursor one wall minute on; that happens at most for the minutes of one repeated hour.
    FOR i IN 1..10000 LOOP
        v_wall := df._cron_next_wall(p_minutes, p_hours, p_doms, p_months, p_dows, p_day_or, v_cursor, v_last);
        IF v_wall IS NULL THEN
            RETURN NULL;
        END IF;
        v_t := df._cron_wall_to_instant(v_wall, p_tz);
        IF v_t > p_after THEN
            RETURN v_t;
        END IF;
        v_cursor := v_wall + interval '1 minute';
    END LOOP;
    RETURN NULL;
END
$$;

-- Parse and search, for a zone already canonical (stored schedules, tests). 22023 for a bad cron.
CREATE FUNCTION df._cron_next(p_cron text, p_tz text, p_after timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    IF p_after IS NULL THEN
        RAISE EXCEPTION 'after must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO c FROM df._cron_std_parse(p_cron);
    RETURN df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, p_after);
END
$$;

-- Public: when would this cron fire next? Validates like df.create_schedule (22023 for a bad cron or zone).
CREATE FUNCTION df.cron_next_fire(cron text, timezone text DEFAULT 'UTC', after timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN df._cron_next(cron, df._tz_canonical(timezone), after);
END
$$;

-- The sweeper's plan for a schedule whose next_fire_at (p_next) is <= p_now.
--   on_time_at     the earliest due time no older than p_grace (p_next itself when it is that recent),
--   after_on_time  and the fire time after it; both NULL when every due time is older (an outage).
--   due_at         the latest due time <= p_now,
--   next_at        and the first fire time after p_now (only computed when on_time_at is NULL).
-- An outage of a day or more starts the walk a day before p_now, so the walk stays short.
CREATE FUNCTION df._schedule_plan(p_cron text, p_tz text, p_next timestamptz, p_now timestamptz, p_grace interval,
                                  OUT on_time_at timestamptz, OUT after_on_time timestamptz,
                                  OUT due_at timestamptz, OUT next_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c    record;
    v_t  timestamptz;
BEGIN
    SELECT * INTO c FROM df._cron_std_parse(p_cron);
    IF p_next >= p_now - p_grace THEN
        on_time_at := p_next;
    ELSE
        v_t := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz,
                                   p_now - p_grace - interval '1 microsecond');
        IF v_t <= p_now THEN
            on_time_at := v_t;
        END IF;
    END IF;
    IF on_time_at IS NOT NULL THEN
        after_on_time := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, on_time_at);
        due_at := on_time_at;
        next_at := after_on_time;
        RETURN;
    END IF;
    due_at := p_next;
    IF p_now - p_next > interval '1 day' THEN
        v_t := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, p_now - interval '1 day');
        IF v_t IS NOT NULL AND v_t <= p_now THEN
            due_at := v_t;
        END IF;
    END IF;
    LOOP
        v_t := df._cron_fire_after(c.minutes, c.hours, c.doms, c.months, c.dows, c.day_or, p_tz, due_at);
        EXIT WHEN v_t IS NULL OR v_t > p_now;
        due_at := v_t;
    END LOOP;
    next_at := v_t;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Schedules

CREATE FUNCTION df._schedule_check_policies(p_missed text, p_overlap text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_missed IS NULL OR p_missed NOT IN ('skip', 'catch_up_once') THEN
        RAISE EXCEPTION 'missed must be ''skip'' or ''catch_up_once'', not %', coalesce(quote_literal(p_missed), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF p_overlap IS NULL OR p_overlap NOT IN ('skip', 'allow') THEN
        RAISE EXCEPTION 'overlap must be ''skip'' or ''allow'', not %', coalesce(quote_literal(p_overlap), 'NULL')
            USING ERRCODE = '22023';
    END IF;
END
$$;

CREATE FUNCTION df._schedule_check_workflow(p_workflow text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_workflow IS NULL THEN
        RAISE EXCEPTION 'workflow must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM df.workflows w WHERE w.name = p_workflow) THEN
        RAISE EXCEPTION 'workflow "%" does not exist', p_workflow USING ERRCODE = 'P0002',
            HINT = 'Define it with df.define_workflow(name, fut) first.';
    END IF;
END
$$;

CREATE FUNCTION df.create_schedule(name text, workflow text, cron text, timezone text DEFAULT 'UTC',
                                   input jsonb DEFAULT NULL, missed text DEFAULT 'skip', overlap text DEFAULT 'skip')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tz   text;
    v_next timestamptz;
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' THEN
        RAISE EXCEPTION 'df.create_schedule(): invalid schedule name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'A name is 1-128 characters: letters, digits, and _ . : - (not first).';
    END IF;
    v_tz := df._tz_canonical(timezone);
    v_next := df._cron_next(cron, v_tz, now());
    PERFORM df._schedule_check_policies(missed, overlap);
    PERFORM df._schedule_check_workflow(workflow);
    BEGIN
        INSERT INTO df.schedules (name, workflow, cron, timezone, input, missed, overlap, next_fire_at)
        VALUES (create_schedule.name, create_schedule.workflow, btrim(create_schedule.cron), v_tz,
                create_schedule.input, create_schedule.missed, create_schedule.overlap, v_next);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'schedule "%" already exists', name USING ERRCODE = '23505',
            HINT = 'Change it with df.alter_schedule, or drop it first.';
    END;
    RETURN v_next;
END
$$;

-- Changes what is given (NULL = unchanged; input => 'null'::jsonb clears the input). A new cron or
-- time zone recomputes next_fire_at from now; the last error is cleared.
CREATE FUNCTION df.alter_schedule(name text, cron text DEFAULT NULL, timezone text DEFAULT NULL,
                                  input jsonb DEFAULT NULL, missed text DEFAULT NULL, overlap text DEFAULT NULL,
                                  workflow text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    s      df.schedules%ROWTYPE;
    v_tz   text;
    v_cron text;
    v_next timestamptz;
BEGIN
    SELECT * INTO s FROM df.schedules t WHERE t.name = alter_schedule.name AND t.owner = quote_ident(current_user)::regrole FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    v_tz := CASE WHEN timezone IS NULL THEN s.timezone ELSE df._tz_canonical(timezone) END;
    v_cron := coalesce(btrim(cron), s.cron);
    v_next := CASE WHEN cron IS NULL AND timezone IS NULL THEN s.next_fire_at
                   ELSE df._cron_next(v_cron, v_tz, now()) END;
    PERFORM df._schedule_check_policies(coalesce(missed, s.missed), coalesce(overlap, s.overlap));
    IF workflow IS NOT NULL THEN
        PERFORM df._schedule_check_workflow(workflow);
    END IF;
    UPDATE df.schedules t
       SET cron = v_cron, timezone = v_tz, next_fire_at = v_next,
           input = CASE WHEN input IS NULL THEN t.input WHEN jsonb_typeof(input) = 'null' THEN NULL ELSE input END,
           missed = coalesce(missed, t.missed), overlap = coalesce(overlap, t.overlap),
           workflow = coalesce(workflow, t.workflow),
           last_error = NULL, last_error_at = NULL, updated_at = now()
     WHERE t.id = s.id;
    RETURN v_next;
END
$$;

CREATE FUNCTION df.pause_schedule(name text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE df.schedules t SET paused = true, updated_at = now() WHERE t.name = pause_schedule.name AND t.owner = quote_ident(current_user)::regrole;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
END
$$;

-- Fires again from the first due time after now: the fires a pause skipped are not caught up.
CREATE FUNCTION df.resume_schedule(name text) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s      df.schedules%ROWTYPE;
    v_next timestamptz;
BEGIN
    SELECT * INTO s FROM df.schedules t WHERE t.name = resume_schedule.name AND t.owner = quote_ident(current_user)::regrole FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    v_next := CASE WHEN s.paused THEN df._cron_next(s.cron, s.timezone, now()) ELSE s.next_fire_at END;
    UPDATE df.schedules t SET paused = false, next_fire_at = v_next, updated_at = now() WHERE t.id = s.id;
    RETURN v_next;
END
$$;

CREATE FUNCTION df.drop_schedule(name text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM df.schedules t WHERE t.name = drop_schedule.name AND t.owner = quote_ident(current_user)::regrole;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
END
$$;

CREATE FUNCTION df.list_schedules()
RETURNS TABLE (name text, workflow text, cron text, timezone text, input jsonb, missed text, overlap text,
               paused boolean, next_fire_at timestamptz, last_fire_at timestamptz, last_instance_id varchar,
               last_instance_status text, last_error text, last_error_at timestamptz,
               created_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.name, s.workflow, s.cron, s.timezone, s.input, s.missed, s.overlap, s.paused, s.next_fire_at,
           s.last_fire_at, s.last_instance_id, i.status, s.last_error, s.last_error_at, s.created_at, s.updated_at
      FROM df.schedules s
      LEFT JOIN df.instances i ON i.id = s.last_instance_id
     WHERE s.owner = quote_ident(current_user)::regrole
     ORDER BY s.name
$$;

CREATE FUNCTION df.schedule_history(name text, limit_count integer DEFAULT 100)
RETURNS TABLE (fire_at timestamptz, outcome text, instance_id varchar, instance_status text, error text,
               fired_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF limit_count IS NULL OR limit_count < 1 THEN
        RAISE EXCEPTION 'limit_count must be at least 1' USING ERRCODE = '22023';
    END IF;
    SELECT s.id INTO v_id FROM df.schedules s
     WHERE s.name = schedule_history.name AND s.owner = quote_ident(current_user)::regrole;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'P0002';
    END IF;
    RETURN QUERY
    SELECT f.fire_at, f.outcome, f.instance_id, i.status, f.error, f.fired_at
      FROM df.schedule_fires f
      LEFT JOIN df.instances i ON i.id = f.instance_id
     WHERE f.schedule_id = v_id
     ORDER BY f.fire_at DESC
     LIMIT limit_count;
END
$$;

GRANT EXECUTE ON FUNCTION df.cron_next_fire(text, text, timestamptz) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.create_schedule(text, text, text, text, jsonb, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.alter_schedule(text, text, text, jsonb, text, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.pause_schedule(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.resume_schedule(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.drop_schedule(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.list_schedules() TO PUBLIC;
GRANT EXECUTE ON FUNCTION df.schedule_history(text, integer) TO PUBLIC;
