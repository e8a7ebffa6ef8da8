-- Build-chat drafts: one row per conversation, holding the latest valid proposal until the
-- client approves it. Only approval (by the intake) creates or updates an automation.
--
-- The proposal is an automation definition already validated against the catalog; its
-- scopes are never stored: they are derived from the catalog whenever they are shown.
-- The messages themselves stay in chat_messages (0001), keyed by the same draft_id.

CREATE TABLE chat_drafts (
    client_id uuid NOT NULL REFERENCES clients ON DELETE CASCADE,
    draft_id uuid NOT NULL DEFAULT gen_random_uuid(),
    proposal jsonb,
    -- The proposal in plain words, as the agent described it from the catalog.
    proposal_summary text,
    -- Bumped with every new proposal, so that an approval names the proposal it saw.
    proposal_revision integer NOT NULL DEFAULT 0 CHECK (proposal_revision >= 0),
    prompt_version text,
    automation_id uuid,
    approved_revision integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, draft_id),
    UNIQUE (draft_id),
    CHECK ((proposal IS NULL) = (proposal_revision = 0)),
    FOREIGN KEY (client_id, automation_id)
        REFERENCES automations (client_id, automation_id) ON DELETE SET NULL (automation_id)
);
CREATE INDEX chat_drafts_client_updated_idx ON chat_drafts (client_id, updated_at DESC);

ALTER TABLE chat_drafts ENABLE ROW LEVEL SECURITY;
ALTER TABLE chat_drafts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chat_drafts
    USING (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid))
    WITH CHECK (client_id = (SELECT nullif(current_setting('app.client_id', true), '')::uuid));

-- intake: starts drafts, records proposals the agent returned, records approval.
GRANT SELECT, INSERT, DELETE ON chat_drafts TO hapex_intake;
GRANT UPDATE (proposal, proposal_summary, proposal_revision, prompt_version, automation_id, approved_revision,
              updated_at) ON chat_drafts TO hapex_intake;
-- agent: reads the draft it answers; it never writes a proposal or an automation.
GRANT SELECT ON chat_drafts TO hapex_agent;
