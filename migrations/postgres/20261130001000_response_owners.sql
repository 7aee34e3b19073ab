-- Who created each stored response on Zhipu's Response API. The gateway serves a stored
-- response (retrieve, input items, delete, previous_response_id) only to its owner's team (or
-- key); Zhipu itself sees one account.
CREATE TABLE response_owners (
    response_id TEXT PRIMARY KEY,
    api_key_id  TEXT NOT NULL,
    team        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX response_owners_expires_idx ON response_owners (expires_at);
