-- insert_automation --
-- A new automation at version 1.
INSERT INTO automations (client_id, automation_id, name, status, trigger, steps, store_outputs)
VALUES (%(client_id)s, %(automation_id)s, %(name)s, %(status)s, %(trigger)s, %(steps)s, %(store_outputs)s)
RETURNING automation_id, version

-- update_automation --
-- A new version of an automation's definition; the schedule is planned again.
UPDATE automations
SET name = %(name)s, trigger = %(trigger)s, steps = %(steps)s, store_outputs = %(store_outputs)s,
    version = version + 1, next_run_at = NULL, updated_at = now()
WHERE automation_id = %(automation_id)s
RETURNING automation_id, version

-- insert_version --
-- Keep the definition a version had, for the runs that ran it.
INSERT INTO automation_versions (client_id, automation_id, version, trigger, steps)
VALUES (%(client_id)s, %(automation_id)s, %(version)s, %(trigger)s, %(steps)s)

-- set_status --
-- Enable, disable (or resume from paused) an automation.
UPDATE automations
SET status = %(status)s, paused_reason = NULL, next_run_at = NULL, updated_at = now()
WHERE automation_id = %(automation_id)s
RETURNING automation_id, status

-- get_automation --
-- One automation of the transaction's client.
SELECT automation_id, name, status, paused_reason, version, trigger, steps, store_outputs, next_run_at,
       created_at, updated_at
FROM automations
WHERE automation_id = %(automation_id)s
