-- usage_events.endpoint holds a short name (chat, responses, embeddings, images, models)
-- instead of the request path.
UPDATE usage_events SET endpoint = 'chat' WHERE endpoint = '/v1/chat/completions';
UPDATE usage_events SET endpoint = 'models' WHERE endpoint LIKE '/v1/models%';

-- What the gateway rewrote to keep a promise Zhipu cannot (json_schema, tool_choice), with the
-- outcome after the check: e.g. 'json_schema', 'json_schema:repaired', 'json_schema:invalid'.
ALTER TABLE usage_events ADD COLUMN emulated TEXT;
