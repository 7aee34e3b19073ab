-- Limits and budgets: per-key cost budgets and budget periods, team budgets, and the counters
-- the gateway checks (rate windows, spent amounts per period, open reservations).
ALTER TABLE api_keys ADD COLUMN cost_budget REAL;
ALTER TABLE api_keys ADD COLUMN budget_period TEXT NOT NULL DEFAULT 'none'
    CHECK (budget_period IN ('none', 'daily', 'monthly'));

CREATE TABLE teams (
    team          TEXT PRIMARY KEY,
    token_budget  INTEGER,
    cost_budget   REAL,
    budget_period TEXT NOT NULL DEFAULT 'none' CHECK (budget_period IN ('none', 'daily', 'monthly')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Requests and tokens of one fixed rate window (`window_start` in Unix seconds) of one scope.
CREATE TABLE limit_windows (
    scope        TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    requests     INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    PRIMARY KEY (scope, window_start)
);

-- What a scope has spent in one budget period (`period_start` in Unix seconds; 0: no period).
CREATE TABLE limit_budgets (
    scope        TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    spent_tokens INTEGER NOT NULL DEFAULT 0,
    spent_cost   REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, period_start)
);

-- Estimates held by requests in flight; they count until settled or until `expires_ms`.
CREATE TABLE limit_reservations (
    request_id   TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    cost         REAL    NOT NULL,
    expires_ms   INTEGER NOT NULL,
    PRIMARY KEY (request_id, scope)
);

CREATE INDEX limit_reservations_scope_idx ON limit_reservations (scope, period_start);
