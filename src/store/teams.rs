//! Rows of `teams` (team budgets) and changes to a key's limits.

use chrono::{DateTime, Utc};

use super::{Db, KeyRecord};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRecord {
    pub team: String,
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    pub budget_period: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A change to a key: each `Some` field is set (`Some(None)` clears it), `None` keeps it.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub models: Option<Option<Vec<String>>>,
    pub rpm: Option<Option<i64>>,
    pub tpm: Option<Option<i64>>,
    pub token_budget: Option<Option<i64>>,
    pub cost_budget: Option<Option<f64>>,
    pub budget_period: Option<String>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

impl Db {
    /// Sets a team's budgets, creating the row when needed.
    pub async fn upsert_team(
        &self,
        team: &str,
        token_budget: Option<i64>,
        cost_budget: Option<f64>,
        budget_period: &str,
    ) -> Result<TeamRecord, sqlx::Error> {
        const SQL: &str = "INSERT INTO teams (team, token_budget, cost_budget, budget_period, \
            created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (team) DO UPDATE \
            SET token_budget = $2, cost_budget = $3, budget_period = $4, updated_at = $5 \
            RETURNING team, token_budget, cost_budget, budget_period, created_at, updated_at";
        let now = Utc::now();
        on_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(team)
            .bind(token_budget)
            .bind(cost_budget)
            .bind(budget_period)
            .bind(now)
            .fetch_one(pool)
            .await)
    }

    pub async fn list_teams(&self) -> Result<Vec<TeamRecord>, sqlx::Error> {
        const SQL: &str =
            "SELECT team, token_budget, cost_budget, budget_period, created_at, updated_at \
             FROM teams ORDER BY team";
        on_pool!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await)
    }

    /// Applies a change to a key; `None` when no such key.
    pub async fn update_key(
        &self,
        id: &str,
        change: &KeyChange,
    ) -> Result<Option<KeyRecord>, sqlx::Error> {
        const SQL: &str = concat!(
            "UPDATE api_keys SET ",
            "models = CASE WHEN $2 THEN $3 ELSE models END, ",
            "rpm = CASE WHEN $4 THEN $5 ELSE rpm END, ",
            "tpm = CASE WHEN $6 THEN $7 ELSE tpm END, ",
            "token_budget = CASE WHEN $8 THEN $9 ELSE token_budget END, ",
            "cost_budget = CASE WHEN $10 THEN $11 ELSE cost_budget END, ",
            "budget_period = CASE WHEN $12 THEN $13 ELSE budget_period END, ",
            "expires_at = CASE WHEN $14 THEN $15 ELSE expires_at END, ",
            "updated_at = $16 WHERE id = $1 RETURNING ",
            key_columns!()
        );
        let models = change.models.as_ref().map(|m| {
            m.as_ref()
                .map(|m| serde_json::Value::from(m.clone()).to_string())
        });
        let now = Utc::now();
        on_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(id)
            .bind(models.is_some())
            .bind(models.flatten())
            .bind(change.rpm.is_some())
            .bind(change.rpm.flatten())
            .bind(change.tpm.is_some())
            .bind(change.tpm.flatten())
            .bind(change.token_budget.is_some())
            .bind(change.token_budget.flatten())
            .bind(change.cost_budget.is_some())
            .bind(change.cost_budget.flatten())
            .bind(change.budget_period.is_some())
            .bind(
                change
                    .budget_period
                    .clone()
                    .unwrap_or_else(|| "none".into())
            )
            .bind(change.expires_at.is_some())
            .bind(change.expires_at.flatten())
            .bind(now)
            .fetch_optional(pool)
            .await)
    }
}
