-- usage_daily and usage_rollups tell endpoints apart (chat, responses, embeddings, images,
-- models). Rollups made before this carry 'chat', which was the only endpoint then.
ALTER TABLE usage_rollups ADD COLUMN endpoint TEXT NOT NULL DEFAULT 'chat';
ALTER TABLE usage_rollups DROP CONSTRAINT usage_rollups_pkey;
ALTER TABLE usage_rollups ADD PRIMARY KEY (day, team, api_key_id, upstream_model, endpoint);

DROP VIEW usage_daily;
-- One row per UTC day, team, key, upstream model and endpoint: the rollups plus the live rows.
CREATE VIEW usage_daily AS
SELECT day, team, api_key_id, upstream_model, endpoint, requests, prompt_tokens,
       completion_tokens, total_tokens, image_count, cost, errors
FROM usage_rollups
UNION ALL
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       team,
       api_key_id,
       COALESCE(upstream_model, '') AS upstream_model,
       endpoint,
       COUNT(*)::bigint AS requests,
       SUM(prompt_tokens)::bigint AS prompt_tokens,
       SUM(completion_tokens)::bigint AS completion_tokens,
       SUM(total_tokens)::bigint AS total_tokens,
       SUM(image_count)::bigint AS image_count,
       SUM(cost) AS cost,
       SUM(CASE WHEN status_code >= 400 OR error_code IS NOT NULL THEN 1 ELSE 0 END)::bigint AS errors
FROM usage_events
GROUP BY 1, 2, 3, 4, 5;
