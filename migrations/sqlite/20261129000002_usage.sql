-- The usage ledger: one row per authenticated request. created_at is RFC 3339 text in UTC, so
-- text order is time order and its first ten characters are the UTC day.
CREATE TABLE usage_events (
    request_id          TEXT    NOT NULL PRIMARY KEY,
    created_at          TEXT    NOT NULL,
    api_key_id          TEXT    NOT NULL,
    team                TEXT    NOT NULL,
    endpoint            TEXT    NOT NULL,
    requested_model     TEXT,
    upstream_model      TEXT,
    streamed            BOOLEAN NOT NULL,
    status_code         INTEGER NOT NULL,
    error_code          TEXT,
    prompt_tokens       BIGINT  NOT NULL DEFAULT 0,
    completion_tokens   BIGINT  NOT NULL DEFAULT 0,
    total_tokens        BIGINT  NOT NULL DEFAULT 0,
    cached_tokens       BIGINT  NOT NULL DEFAULT 0,
    image_count         BIGINT  NOT NULL DEFAULT 0,
    latency_ms          BIGINT  NOT NULL,
    usage_source        TEXT    NOT NULL CHECK (usage_source IN ('upstream', 'estimated', 'none')),
    client_disconnected BOOLEAN NOT NULL,
    -- CNY; NULL when no price covers the model.
    cost                REAL,
    prompt_text         TEXT,
    completion_text     TEXT
);

CREATE INDEX usage_events_created_idx ON usage_events (created_at);
CREATE INDEX usage_events_team_idx ON usage_events (team, created_at);

-- Daily totals of the raw rows that retention removed; kept forever.
CREATE TABLE usage_rollups (
    day               TEXT    NOT NULL,
    team              TEXT    NOT NULL,
    api_key_id        TEXT    NOT NULL,
    -- '' when the row named no upstream model.
    upstream_model    TEXT    NOT NULL,
    requests          BIGINT  NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    total_tokens      BIGINT  NOT NULL,
    image_count       BIGINT  NOT NULL,
    -- Rows with status_code >= 400 or an error_code.
    errors            BIGINT  NOT NULL,
    cost              REAL,
    PRIMARY KEY (day, team, api_key_id, upstream_model)
);

-- One row per UTC day, team, key and upstream model: the rollups plus the live rows.
CREATE VIEW usage_daily AS
SELECT day, team, api_key_id, upstream_model, requests, prompt_tokens, completion_tokens,
       total_tokens, image_count, cost, errors
FROM usage_rollups
UNION ALL
SELECT date(created_at) AS day,
       team,
       api_key_id,
       COALESCE(upstream_model, '') AS upstream_model,
       COUNT(*) AS requests,
       SUM(prompt_tokens) AS prompt_tokens,
       SUM(completion_tokens) AS completion_tokens,
       SUM(total_tokens) AS total_tokens,
       SUM(image_count) AS image_count,
       SUM(cost) AS cost,
       SUM(CASE WHEN status_code >= 400 OR error_code IS NOT NULL THEN 1 ELSE 0 END) AS errors
FROM usage_events
GROUP BY 1, 2, 3, 4;
