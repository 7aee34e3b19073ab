//! Rows of `api_keys`. Secrets never reach this module: only their hashes.

use chrono::{DateTime, Utc};

use super::Db;

/// One row of `api_keys`, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub team: String,
    pub secret_hash: String,
    /// JSON array text; `None` allows every model.
    pub models: Option<String>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    /// `none`, `daily` or `monthly`.
    pub budget_period: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    /// A live key made now, for every model, with no limits and no expiry.
    pub fn unlimited(id: &str, name: &str, team: &str, secret_hash: String) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            team: team.into(),
            secret_hash,
            models: None,
            rpm: None,
            tpm: None,
            token_budget: None,
            cost_budget: None,
            budget_period: "none".into(),
            expires_at: None,
            created_at: Utc::now(),
            revoked_at: None,
        }
    }
}

/// What creating a key stores.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub team: String,
    pub secret_hash: String,
    pub models: Option<Vec<String>>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    pub budget_period: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The columns of `KeyRecord`, as a literal so statements are built with `concat!`.
macro_rules! key_columns {
    () => {
        "id, name, team, secret_hash, models, rpm, tpm, token_budget, cost_budget, budget_period, expires_at, created_at, revoked_at"
    };
}

impl Db {
    pub async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, sqlx::Error> {
        const SQL: &str = concat!(
            "INSERT INTO api_keys (id, name, team, secret_hash, models, rpm, tpm, token_budget, ",
            "cost_budget, budget_period, expires_at, created_at, updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) ",
            "RETURNING ",
            key_columns!()
        );
        let now = Utc::now();
        let models = key
            .models
            .as_ref()
            .map(|m| serde_json::Value::from(m.clone()).to_string());
        on_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(&key.id)
                .bind(&key.name)
                .bind(&key.team)
                .bind(&key.secret_hash)
                .bind(&models)
                .bind(key.rpm)
                .bind(key.tpm)
                .bind(key.token_budget)
                .bind(key.cost_budget)
                .bind(&key.budget_period)
                .bind(key.expires_at)
                .bind(now)
                .fetch_one(pool)
                .await
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, sqlx::Error> {
        const SQL: &str = concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY created_at, id"
        );
        on_pool!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await)
    }

    /// One key by id, revoked or not; `None` when there is no such row.
    pub async fn find_key(&self, id: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
        const SQL: &str = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1");
        on_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(id)
            .fetch_optional(pool)
            .await)
    }

    /// Marks a key revoked (keeping the first revocation time); `None` when no such key.
    pub async fn revoke_key(&self, id: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
        const SQL: &str = concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2), updated_at = $2 ",
            "WHERE id = $1 RETURNING ",
            key_columns!()
        );
        let now = Utc::now();
        on_pool!(self, |pool| sqlx::query_as(SQL)
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await)
    }
}
