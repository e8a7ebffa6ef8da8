-- due_polls --
-- Across clients, the enabled poll automations due (SECURITY DEFINER; ids and times only).
SELECT client_id, automation_id, next_run_at FROM hapex_due_polls(%(now)s, %(limit)s)

-- add_state --
-- An automation's poll state, not yet taken (version 0): its first poll takes the provider's state.
INSERT INTO poll_states (client_id, automation_id, automation_version)
VALUES (%(client_id)s, %(automation_id)s, 0)
ON CONFLICT (client_id, automation_id) DO NOTHING

-- claim_state --
-- The automation's poll state, locked for this poll; none when another worker is polling it now.
SELECT automation_version, cursor, primed_at, polled_at
FROM poll_states
WHERE automation_id = %(automation_id)s
FOR UPDATE SKIP LOCKED

-- poll_automation --
-- What a poll needs of its automation.
SELECT status, version, trigger, next_run_at FROM automations WHERE automation_id = %(automation_id)s

-- prime_state --
-- The provider's state taken as seen: the cursor now, and nothing seen before it counts.
UPDATE poll_states
SET automation_version = %(version)s, cursor = %(cursor)s, primed_at = now(), polled_at = now()
WHERE automation_id = %(automation_id)s

-- forget_seen --
-- The items seen under an earlier version of the trigger.
DELETE FROM poll_seen WHERE automation_id = %(automation_id)s

-- record_seen --
-- New items' keys, in the order the provider gave them; keys seen before are skipped.
INSERT INTO poll_seen (client_id, automation_id, item_key)
SELECT %(client_id)s, %(automation_id)s, key
FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS given (key, n)
ORDER BY n
ON CONFLICT (client_id, automation_id, item_key) DO NOTHING

-- waiting_items --
-- The items seen and not yet started, oldest first, at most a poll's cap.
SELECT item_key FROM poll_seen
WHERE automation_id = %(automation_id)s AND started_at IS NULL
ORDER BY position
LIMIT %(limit)s

-- mark_started --
-- The run an item started.
UPDATE poll_seen SET started_at = now(), run_id = %(run_id)s
WHERE automation_id = %(automation_id)s AND item_key = %(item_key)s

-- count_waiting --
-- How many new items wait for the next polls.
SELECT count(*) AS waiting FROM poll_seen WHERE automation_id = %(automation_id)s AND started_at IS NULL

-- advance_state --
-- The cursor after this poll.
UPDATE poll_states SET cursor = %(cursor)s, polled_at = now() WHERE automation_id = %(automation_id)s

-- set_next_poll --
-- When the automation is polled next, unless it was edited, disabled or enabled again meanwhile.
UPDATE automations SET next_run_at = %(next_run_at)s
WHERE automation_id = %(automation_id)s AND version = %(version)s AND status = 'enabled'
  AND next_run_at IS NOT DISTINCT FROM %(previous)s
RETURNING automation_id
