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

-- A request's reservation against its budgets in one round trip, atomic across replicas: each
-- budget's row for the period is created or locked (so admissions of one budget take turns),
-- then spent + held + the estimate is checked against every budget; only if all fit is the
-- estimate held in each. Each statement of a volatile function sees a fresh snapshot, so the sum
-- of held estimates includes those committed by whoever held the lock before. Returns no row
-- when admitted, else the 1-based index of the first budget that does not fit and its spent
-- amounts.
CREATE FUNCTION glm_limit_reserve(
    p_scopes        TEXT[],
    p_periods       BIGINT[],
    p_token_budgets BIGINT[],
    p_cost_budgets  DOUBLE PRECISION[],
    p_request       TEXT,
    p_tokens        BIGINT,
    p_cost          DOUBLE PRECISION,
    p_now_ms        BIGINT,
    p_expires_ms    BIGINT
) RETURNS TABLE (refused_claim INTEGER, refused_tokens BIGINT, refused_cost DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    spent_t BIGINT;
    spent_c DOUBLE PRECISION;
    held_t  BIGINT;
    held_c  DOUBLE PRECISION;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        INSERT INTO limit_budgets AS b (scope, period_start, spent_tokens, spent_cost)
        VALUES (p_scopes[i], p_periods[i], 0, 0)
        ON CONFLICT (scope, period_start) DO UPDATE SET spent_tokens = b.spent_tokens
        RETURNING b.spent_tokens, b.spent_cost INTO spent_t, spent_c;
        SELECT coalesce(sum(r.tokens), 0), coalesce(sum(r.cost), 0) INTO held_t, held_c
        FROM limit_reservations r
        WHERE r.scope = p_scopes[i] AND r.period_start = p_periods[i] AND r.expires_ms > p_now_ms;
        IF (p_token_budgets[i] IS NOT NULL AND spent_t + held_t + p_tokens > p_token_budgets[i])
           OR (p_cost_budgets[i] IS NOT NULL AND (spent_c + held_c >= p_cost_budgets[i]
               OR spent_c + held_c + p_cost > p_cost_budgets[i])) THEN
            RETURN QUERY SELECT i, spent_t, spent_c;
            RETURN;
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        INSERT INTO limit_reservations (request_id, scope, period_start, tokens, cost, expires_ms)
        VALUES (p_request, p_scopes[i], p_periods[i], p_tokens, p_cost, p_expires_ms)
        ON CONFLICT (request_id, scope) DO NOTHING;
    END LOOP;
END
$$;

-- A finished request's real usage booked to its budgets' periods, and its reservations
-- dropped, in one statement.
CREATE FUNCTION glm_limit_settle(
    p_request TEXT,
    p_scopes  TEXT[],
    p_periods BIGINT[],
    p_tokens  BIGINT,
    p_cost    DOUBLE PRECISION
) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        INSERT INTO limit_budgets AS b (scope, period_start, spent_tokens, spent_cost)
        VALUES (p_scopes[i], p_periods[i], p_tokens, p_cost)
        ON CONFLICT (scope, period_start) DO UPDATE
        SET spent_tokens = b.spent_tokens + p_tokens, spent_cost = b.spent_cost + p_cost;
    END LOOP;
    DELETE FROM limit_reservations WHERE request_id = p_request;
END
$$;
