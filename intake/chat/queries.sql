-- insert_draft --
-- A new build-chat draft of the transaction's client.
INSERT INTO chat_drafts (client_id, draft_id)
VALUES (%(client_id)s, %(draft_id)s)
RETURNING draft_id

-- get_draft --
-- One draft, its latest proposal, and the automation an approval saved (if it still exists).
SELECT d.draft_id, d.proposal, d.proposal_summary, d.proposal_revision, d.prompt_version, d.automation_id,
       d.approved_revision, d.created_at, d.updated_at, a.name AS automation_name
FROM chat_drafts d
LEFT JOIN automations a ON a.client_id = d.client_id AND a.automation_id = d.automation_id
WHERE d.client_id = %(client_id)s AND d.draft_id = %(draft_id)s

-- lock_draft --
-- One draft, locked while an approval saves its proposal.
SELECT draft_id, proposal, proposal_revision, automation_id, approved_revision
FROM chat_drafts
WHERE client_id = %(client_id)s AND draft_id = %(draft_id)s
FOR UPDATE

-- list_drafts --
-- The client's drafts, most recently active first.
SELECT d.draft_id, d.proposal ->> 'name' AS proposal_name, d.proposal_revision, d.automation_id,
       d.approved_revision, d.created_at, d.updated_at,
       (SELECT count(*) FROM chat_messages m WHERE m.client_id = d.client_id AND m.draft_id = d.draft_id)
           AS message_count
FROM chat_drafts d
WHERE d.client_id = %(client_id)s
ORDER BY d.updated_at DESC
LIMIT %(limit)s

-- list_messages --
-- A draft's conversation, oldest first.
SELECT message_id, role, content, created_at
FROM chat_messages
WHERE client_id = %(client_id)s AND draft_id = %(draft_id)s
ORDER BY created_at, message_id

-- insert_message --
-- One message of the conversation; the clock time keeps two messages of one request in order.
INSERT INTO chat_messages (client_id, draft_id, role, content, created_at)
VALUES (%(client_id)s, %(draft_id)s, %(role)s, %(content)s, clock_timestamp())
RETURNING message_id

-- touch_draft --
-- The draft was active now (it moves to the top of the list).
UPDATE chat_drafts SET updated_at = now()
WHERE client_id = %(client_id)s AND draft_id = %(draft_id)s

-- save_proposal --
-- The agent's latest valid proposal becomes the one shown for approval.
UPDATE chat_drafts
SET proposal = %(proposal)s, proposal_summary = %(summary)s, proposal_revision = proposal_revision + 1,
    prompt_version = %(prompt_version)s, updated_at = now()
WHERE client_id = %(client_id)s AND draft_id = %(draft_id)s
RETURNING proposal_revision

-- mark_approved --
-- The client approved this revision, which created or updated this automation.
UPDATE chat_drafts
SET automation_id = %(automation_id)s, approved_revision = %(revision)s, updated_at = now()
WHERE client_id = %(client_id)s AND draft_id = %(draft_id)s
