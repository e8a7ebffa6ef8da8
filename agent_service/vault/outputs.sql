-- seal_output --
-- A step's output, sealed, beside its record; only while its automation still stores outputs
-- (the automation row is share-locked, so turning the switch off waits for this commit and
-- then forgets this output too, or this write sees the switch already off and stores nothing).
UPDATE run_steps s
SET output_ciphertext = %(ciphertext)s, output_nonce = %(nonce)s, output_key_id = %(key_id)s
FROM runs r
WHERE s.run_id = %(run_id)s AND s.step_index = %(step_index)s AND r.run_id = s.run_id
  AND (SELECT a.store_outputs FROM automations a
       WHERE a.client_id = r.client_id AND a.automation_id = r.automation_id FOR SHARE)
RETURNING s.step_index

-- list_outputs --
-- The sealed outputs of one run of the transaction's client, in step order.
SELECT step_index, capability, output_key_id, output_nonce, output_ciphertext
FROM run_steps
WHERE run_id = %(run_id)s AND output_ciphertext IS NOT NULL
ORDER BY step_index

-- list_client_outputs --
-- One page of every sealed output of the transaction's client, by run then step, after a (run, step).
SELECT run_id, step_index, capability, output_key_id, output_nonce, output_ciphertext
FROM run_steps
WHERE output_ciphertext IS NOT NULL
  AND (%(after_run)s::uuid IS NULL OR (run_id, step_index) > (%(after_run)s::uuid, %(after_step)s::integer))
ORDER BY run_id, step_index
LIMIT %(limit)s

-- run_exists --
-- Whether the transaction's client has this run.
SELECT 1 AS found FROM runs WHERE run_id = %(run_id)s

-- lock_output --
-- One sealed output locked for re-encryption under the primary key.
SELECT output_key_id, output_nonce, output_ciphertext
FROM run_steps
WHERE run_id = %(run_id)s AND step_index = %(step_index)s AND output_ciphertext IS NOT NULL
FOR UPDATE

-- replace_output --
-- Compare-and-swap on the nonce, which no two encryptions share: a changed row is left alone.
UPDATE run_steps
SET output_ciphertext = %(ciphertext)s, output_nonce = %(nonce)s, output_key_id = %(key_id)s
WHERE run_id = %(run_id)s AND step_index = %(step_index)s AND output_nonce = %(old_nonce)s

-- forget_output --
-- An output that no longer decrypts is of no use to anyone: drop it.
UPDATE run_steps SET output_ciphertext = NULL, output_nonce = NULL, output_key_id = NULL
WHERE run_id = %(run_id)s AND step_index = %(step_index)s AND output_nonce = %(old_nonce)s

-- output_key_census --
-- Stored outputs per key id across every client (SECURITY DEFINER; ids and counts only).
SELECT key_id, outputs FROM hapex_vault_output_key_census()

-- output_rotation_batch --
-- The next stored outputs not under the primary key, after a (run, step) (ids only).
SELECT client_id, run_id, step_index, key_id
FROM hapex_vault_output_rotation_batch(%(primary_key_id)s, %(after_run)s, %(after_step)s, %(limit)s)
