-- usage_events.endpoint holds a short name (chat, responses, embeddings, images, models)
-- instead of the request path.
UPDATE usage_events SET endpoint = 'chat' WHERE endpoint = '/v1/chat/completions';
UPDATE usage_events SET endpoint = 'models' WHERE endpoint LIKE '/v1/models%';
