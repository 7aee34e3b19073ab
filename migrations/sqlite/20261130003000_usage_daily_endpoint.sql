-- usage_daily and usage_rollups tell endpoints apart (chat, responses, embeddings, images,
-- models). Rollups made before this carry 'chat', which was the only endpoint then. SQLite
-- cannot change a primary key in place, so the rollups table is rebuilt.
DROP VIEW usage_daily;

CREATE TABLE usage_rollups_new (
    day               TEXT    NOT NULL,
    team              TEXT    NOT NULL,
    api_key_id        TEXT    NOT NULL,
    -- '' when the row named no upstream model.
    upstream_model    TEXT    NOT NULL,
    endpoint          TEXT    NOT NULL,
    requests          BIGINT  NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    total_tokens      BIGINT  NOT NULL,
    image_count       BIGINT  NOT NULL,
    -- Rows with status_code >= 400 or an error_code.
    errors            BIGINT  NOT NULL,
    cost              REAL,
    PRIMARY KEY (day, team, api_key_id, upstream_model, endpoint)
);
INSERT INTO usage_rollups_new (day, team, api_key_id, upstream_model, endpoint, requests,
    prompt_tokens, completion_tokens, total_tokens, image_count, errors, cost)
SELECT day, team, api_key_id, upstream_model, 'chat', requests, prompt_tokens,
       completion_tokens, total_tokens, image_count, errors, cost
FROM usage_rollups;
DROP TABLE usage_rollups;
ALTER TABLE usage_rollups_new RENAME TO usage_rollups;

-- One row per UTC day, team, key, upstream model and endpoint: the rollups plus the live rows.
CREATE VIEW usage_daily AS
SELECT day, team, api_key_id, upstream_model, endpoint, requests, prompt_tokens,
       completion_tokens, total_tokens, image_count, cost, errors
FROM usage_rollups
UNION ALL
SELECT date(created_at) AS day,
       team,
       api_key_id,
       COALESCE(upstream_model, '') AS upstream_model,
       endpoint,
       COUNT(*) AS requests,
       SUM(prompt_tokens) AS prompt_tokens,
       SUM(completion_tokens) AS completion_tokens,
       SUM(total_tokens) AS total_tokens,
       SUM(image_count) AS image_count,
       SUM(cost) AS cost,
       SUM(CASE WHEN status_code >= 400 OR error_code IS NOT NULL THEN 1 ELSE 0 END) AS errors
FROM usage_events
GROUP BY 1, 2, 3, 4, 5;
