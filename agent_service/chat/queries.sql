-- get_draft_proposal --
-- One build-chat draft of the transaction's client, with the proposal now shown to the client.
SELECT draft_id, proposal, proposal_revision, automation_id, approved_revision
FROM chat_drafts
WHERE draft_id = %(draft_id)s

-- recent_messages --
-- The draft's latest messages, oldest first: what the model is shown of the conversation.
SELECT role, content
FROM (SELECT role, content, created_at, message_id
      FROM chat_messages
      WHERE client_id = %(client_id)s AND draft_id = %(draft_id)s
      ORDER BY created_at DESC, message_id DESC
      LIMIT %(limit)s) AS latest
ORDER BY created_at, message_id

-- insert_chat_cost_event --
-- One priced model call of the build chat (no run, no step).
INSERT INTO cost_events (client_id, source, provider, model, input_tokens, output_tokens,
                         cache_creation_input_tokens, cache_read_input_tokens, price_version, amount_microusd, calls)
VALUES (%(client_id)s, 'chat', 'anthropic', %(model)s, %(input_tokens)s, %(output_tokens)s,
        %(cache_creation_input_tokens)s, %(cache_read_input_tokens)s, %(price_version)s, %(amount_microusd)s, 1)
