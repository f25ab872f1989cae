-- 0033_instance_times: an instance records when it started and when it finished, as they happen, for
-- the REST API's started_at and finished_at (they were approximated from its nodes' updated_at).
--
-- started_at: the first time its status leaves 'pending' for anything but 'cancelled', which is the
-- transaction of the first claim of one of its steps (the activation checkpoint writes the status:
-- 'running', or straight to 'completed'/'failed' for a one-step instance). It is never cleared: a
-- resumed instance keeps when it first started.
-- finished_at: each time its status becomes 'completed', 'failed' or 'cancelled'; cleared when a resume
-- makes it 'running' again.
-- A trigger rather than edits to every writer of the status (the checkpoints df._apply and
-- df._apply_batch, df.cancel, df.resume): it fires only on a status change (its WHEN clause is checked
-- without calling the function), about twice per instance.

ALTER TABLE df.instances ADD COLUMN started_at timestamptz, ADD COLUMN finished_at timestamptz;

CREATE FUNCTION df._instance_times()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.status = 'pending' AND NEW.status <> 'cancelled' THEN
        NEW.started_at := coalesce(NEW.started_at, now());
    END IF;
    IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
        NEW.finished_at := now();
    ELSE
        NEW.finished_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION df._instance_times() IS
    'Trigger of df.instances: records started_at when the status first leaves pending (the first claim) and finished_at when it becomes completed, failed or cancelled.';

CREATE TRIGGER instances_times BEFORE UPDATE OF status ON df.instances
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION df._instance_times();

-- Instances from before: the approximation the API used, once.
UPDATE df.instances AS i
   SET started_at = (SELECT min(n.updated_at) FROM df.nodes AS n WHERE n.instance_id = i.id AND n.status <> 'pending'),
       finished_at = CASE WHEN i.status = 'completed' THEN coalesce(i.completed_at, i.updated_at)
                          WHEN i.status IN ('failed', 'cancelled') THEN i.updated_at END
 WHERE i.status <> 'pending';
