//! The limit counters in the database: rate windows, spent amounts per budget period and the
//! reservations of requests in flight. On Postgres every replica shares them; row locks make
//! each check-and-add atomic.

use super::Db;
use crate::domain::{fits, Claim, Hold, Refusal, WindowCount};

const TAKE_WINDOW: &str = "INSERT INTO limit_windows (scope, window_start, requests, tokens) \
    VALUES ($1, $2, $6, $3) ON CONFLICT (scope, window_start) DO UPDATE \
    SET requests = limit_windows.requests + $6, tokens = limit_windows.tokens + $3 \
    WHERE limit_windows.requests + $6 <= $4 AND limit_windows.tokens + $3 <= $5 \
    RETURNING requests, tokens";
const READ_WINDOW: &str =
    "SELECT requests, tokens FROM limit_windows WHERE scope = $1 AND window_start = $2";
const ADJUST_WINDOW: &str = "UPDATE limit_windows SET requests = requests + $3, \
    tokens = tokens + $4 WHERE scope = $1 AND window_start = $2";
/// Creates the period's row or, when it exists, locks it until the transaction ends: admissions
/// of one scope and period take their turns, replicas included.
const LOCK_BUDGET: &str =
    "INSERT INTO limit_budgets (scope, period_start, spent_tokens, spent_cost) \
    VALUES ($1, $2, 0, 0) ON CONFLICT (scope, period_start) DO UPDATE \
    SET spent_tokens = limit_budgets.spent_tokens RETURNING spent_tokens, spent_cost";
/// Run after the lock, so (in READ COMMITTED) it sees every reservation committed before.
const HELD: &str = "SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT), \
    CAST(COALESCE(SUM(cost), 0) AS DOUBLE PRECISION) FROM limit_reservations \
    WHERE scope = $1 AND period_start = $2 AND expires_ms > $3";
const HOLD: &str = "INSERT INTO limit_reservations \
    (request_id, scope, period_start, tokens, cost, expires_ms) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (request_id, scope) DO NOTHING";
const SPEND: &str = "INSERT INTO limit_budgets (scope, period_start, spent_tokens, spent_cost) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (scope, period_start) DO UPDATE \
    SET spent_tokens = limit_budgets.spent_tokens + $3, spent_cost = limit_budgets.spent_cost + $4";
const RELEASE: &str = "DELETE FROM limit_reservations WHERE request_id = $1";
const CLEAN_WINDOWS: &str = "DELETE FROM limit_windows WHERE window_start < $1";
const CLEAN_HELD: &str = "DELETE FROM limit_reservations WHERE expires_ms <= $1";

impl Db {
    /// The pool the limit counters use. On Postgres a pool of its own whose commits do not wait
    /// for the disk (`synchronous_commit = off`): a counter update lost to a database crash
    /// costs a few milliseconds of counts, while waiting for the disk would add a flush to every
    /// request. On SQLite the same pool.
    pub fn counters_pool(&self) -> Self {
        match self {
            Self::Postgres(pool) => {
                let options = pool
                    .connect_options()
                    .as_ref()
                    .clone()
                    .options([("synchronous_commit", "off")]);
                Self::Postgres(
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(16)
                        .acquire_timeout(std::time::Duration::from_secs(3))
                        .connect_lazy_with(options),
                )
            }
            Self::Sqlite(_) => self.clone(),
        }
    }

    /// Adds `(requests, tokens)` to the window unless a limit would be passed (the caller
    /// refuses an amount past a limit on its own: a new window's row takes it unchecked);
    /// either way returns the window's counts.
    pub async fn take_window(
        &self,
        scope: &str,
        window_start: i64,
        (requests, tokens): (i64, i64),
        (max_requests, max_tokens): (i64, i64),
    ) -> Result<WindowCount, sqlx::Error> {
        let taken: Option<(i64, i64)> = on_pool!(self, |pool| sqlx::query_as(TAKE_WINDOW)
            .bind(scope)
            .bind(window_start)
            .bind(tokens)
            .bind(max_requests)
            .bind(max_tokens)
            .bind(requests)
            .fetch_optional(pool)
            .await)?;
        if let Some((requests, tokens)) = taken {
            return Ok(WindowCount {
                admitted: true,
                requests,
                tokens,
            });
        }
        let (requests, tokens): (i64, i64) = on_pool!(self, |pool| sqlx::query_as(READ_WINDOW)
            .bind(scope)
            .bind(window_start)
            .fetch_optional(pool)
            .await)?
        .unwrap_or((0, 0));
        Ok(WindowCount {
            admitted: false,
            requests,
            tokens,
        })
    }

    pub async fn adjust_window(
        &self,
        scope: &str,
        window_start: i64,
        requests: i64,
        tokens: i64,
    ) -> Result<(), sqlx::Error> {
        on_pool!(self, |pool| sqlx::query(ADJUST_WINDOW)
            .bind(scope)
            .bind(window_start)
            .bind(requests)
            .bind(tokens)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// For each claim: lock its period's row, add up what is spent and held, and hold the
    /// estimate; nothing is held if one claim does not fit. On Postgres one call of
    /// `glm_limit_reserve`; on SQLite a transaction (the limiter runs them one at a time).
    /// Callers give the claims in a fixed order (key before team), so two admissions never wait
    /// on each other in a circle.
    pub async fn reserve_budgets(
        &self,
        claims: &[Claim],
        hold: Hold<'_>,
    ) -> Result<Option<Refusal>, sqlx::Error> {
        let pool = match self {
            Self::Postgres(pool) => return pg_reserve(pool, claims, hold).await,
            Self::Sqlite(pool) => pool,
        };
        {
            let mut tx = pool.begin().await?;
            for (index, claim) in claims.iter().enumerate() {
                let (spent_tokens, spent_cost): (i64, f64) = sqlx::query_as(LOCK_BUDGET)
                    .bind(&claim.scope)
                    .bind(claim.period_start)
                    .fetch_one(&mut *tx)
                    .await?;
                let (held_tokens, held_cost): (i64, f64) = sqlx::query_as(HELD)
                    .bind(&claim.scope)
                    .bind(claim.period_start)
                    .bind(hold.now_ms)
                    .fetch_one(&mut *tx)
                    .await?;
                let used = (spent_tokens + held_tokens, spent_cost + held_cost);
                if !fits(claim, used.0, used.1, hold.tokens, hold.cost) {
                    tx.rollback().await?;
                    return Ok(Some(Refusal {
                        claim: index,
                        spent_tokens,
                        spent_cost,
                    }));
                }
                sqlx::query(HOLD)
                    .bind(hold.request_id)
                    .bind(&claim.scope)
                    .bind(claim.period_start)
                    .bind(hold.tokens)
                    .bind(hold.cost)
                    .bind(hold.expires_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(None)
        }
    }

    /// Books the real usage to each claim's period and drops the request's reservations, in
    /// one transaction (on Postgres one call of `glm_limit_settle`) so that no admission sees
    /// one without the other.
    pub async fn settle_budgets(
        &self,
        request_id: &str,
        claims: &[Claim],
        tokens: i64,
        cost: f64,
    ) -> Result<(), sqlx::Error> {
        let pool = match self {
            Self::Postgres(pool) => {
                let (scopes, periods) = scopes_and_periods(claims);
                return sqlx::query("SELECT glm_limit_settle($1, $2, $3, $4, $5)")
                    .bind(request_id)
                    .bind(scopes)
                    .bind(periods)
                    .bind(tokens)
                    .bind(cost)
                    .execute(pool)
                    .await
                    .map(|_| ());
            }
            Self::Sqlite(pool) => pool,
        };
        {
            let mut tx = pool.begin().await?;
            for claim in claims {
                sqlx::query(SPEND)
                    .bind(&claim.scope)
                    .bind(claim.period_start)
                    .bind(tokens)
                    .bind(cost)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(RELEASE)
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    }

    pub async fn clean_limits(&self, windows_before: i64, now_ms: i64) -> Result<(), sqlx::Error> {
        on_pool!(self, |pool| {
            sqlx::query(CLEAN_WINDOWS)
                .bind(windows_before)
                .execute(pool)
                .await?;
            sqlx::query(CLEAN_HELD)
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }
}

fn scopes_and_periods(claims: &[Claim]) -> (Vec<String>, Vec<i64>) {
    claims
        .iter()
        .map(|claim| (claim.scope.clone(), claim.period_start))
        .unzip()
}

/// The reservation on Postgres: one call of `glm_limit_reserve` (see its migration).
async fn pg_reserve(
    pool: &sqlx::PgPool,
    claims: &[Claim],
    hold: Hold<'_>,
) -> Result<Option<Refusal>, sqlx::Error> {
    let (scopes, periods) = scopes_and_periods(claims);
    let token_budgets: Vec<Option<i64>> = claims.iter().map(|c| c.token_budget).collect();
    let cost_budgets: Vec<Option<f64>> = claims.iter().map(|c| c.cost_budget).collect();
    let refused: Option<(i32, i64, f64)> = sqlx::query_as(
        "SELECT refused_claim, refused_tokens, refused_cost \
         FROM glm_limit_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(scopes)
    .bind(periods)
    .bind(token_budgets)
    .bind(cost_budgets)
    .bind(hold.request_id)
    .bind(hold.tokens)
    .bind(hold.cost)
    .bind(hold.now_ms)
    .bind(hold.expires_ms)
    .fetch_optional(pool)
    .await?;
    Ok(refused.map(|(claim, spent_tokens, spent_cost)| Refusal {
        claim: usize::try_from(claim - 1).unwrap_or(0),
        spent_tokens,
        spent_cost,
    }))
}
