-- Downstream keys. A key reads `sk-glm-<id>-<secret>`; only SHA-256(secret) is stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    team         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    -- JSON array of model names or `prefix*` patterns this key may use; NULL allows all.
    models       TEXT,
    rpm          BIGINT,
    tpm          BIGINT,
    token_budget BIGINT,
    expires_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);

CREATE INDEX api_keys_team_idx ON api_keys (team);
