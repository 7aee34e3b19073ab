-- Limits and budgets: per-key cost budgets and budget periods, team budgets, and the shared
-- counters every replica checks (rate windows, spent amounts per period, open reservations).
ALTER TABLE api_keys ADD COLUMN cost_budget DOUBLE PRECISION;
ALTER TABLE api_keys ADD COLUMN budget_period TEXT NOT NULL DEFAULT 'none'
    CHECK (budget_period IN ('none', 'daily', 'monthly'));

CREATE TABLE teams (
    team          TEXT PRIMARY KEY,
    token_budget  BIGINT,
    cost_budget   DOUBLE PRECISION,
    budget_period TEXT NOT NULL DEFAULT 'none' CHECK (budget_period IN ('none', 'daily', 'monthly')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Requests and tokens of one fixed rate window (`window_start` in Unix seconds) of one scope
-- (`key:<id>`).
CREATE TABLE limit_windows (
    scope        TEXT   NOT NULL,
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL,
    PRIMARY KEY (scope, window_start)
);

-- What a scope (`key:<id>` or `team:<team>`) has spent in one budget period (`period_start`
-- in Unix seconds; 0 for budgets without a period).
CREATE TABLE limit_budgets (
    scope        TEXT             NOT NULL,
    period_start BIGINT           NOT NULL,
    spent_tokens BIGINT           NOT NULL DEFAULT 0,
    spent_cost   DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period_start)
);

-- Estimates held by requests in flight; they count until settled or until `expires_ms`, so a
-- crashed replica's reservations stop counting on their own.
CREATE TABLE limit_reservations (
    request_id   TEXT             NOT NULL,
    scope        TEXT             NOT NULL,
    period_start BIGINT           NOT NULL,
    tokens       BIGINT           NOT NULL,
    cost         DOUBLE PRECISION NOT NULL,
    expires_ms   BIGINT           NOT NULL,
    PRIMARY KEY (request_id, scope)
);

CREATE INDEX limit_reservations_scope_idx ON limit_reservations (scope, period_start);
