-- Downstream keys. A key reads `sk-glm-<id>-<secret>`; only SHA-256(secret) is stored.
-- Timestamps are RFC 3339 text in UTC.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    team         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    -- JSON array of model names or `prefix*` patterns this key may use; NULL allows all.
    models       TEXT,
    rpm          INTEGER,
    tpm          INTEGER,
    token_budget INTEGER,
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE INDEX api_keys_team_idx ON api_keys (team);
