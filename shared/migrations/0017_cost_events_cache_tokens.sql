-- Prompt caching: a model call's input is counted three ways by the Messages API, each priced on
-- its own (agent_service/runs/prices.py). input_tokens stays what the API calls input_tokens: the
-- uncached input after the last cache breakpoint. The two new counts are the tokens written to the
-- prompt cache (cache_creation_input_tokens) and read from it (cache_read_input_tokens), NULL for
-- events that are not model calls and for model calls recorded before this migration (which had
-- no cache breakpoints). amount_microusd is still the event's whole price.
ALTER TABLE cost_events
    ADD COLUMN cache_creation_input_tokens integer CHECK (cache_creation_input_tokens >= 0),
    ADD COLUMN cache_read_input_tokens integer CHECK (cache_read_input_tokens >= 0);
