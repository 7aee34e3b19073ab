//! Creating, listing and revoking keys: one implementation behind both `/admin/keys` and
//! `glm-gateway keys`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{generate, ApiKey};
use crate::domain::BudgetPeriod;
use crate::error::ApiError;
use crate::store::{Db, KeyRecord, NewKey};

/// The body of `POST /admin/keys` and the flags of `glm-gateway keys create`.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name for people, e.g. the service using the key.
    #[arg(long)]
    pub name: String,
    /// The team the key's usage is booked to.
    #[arg(long)]
    pub team: String,
    /// Models this key may use (names or `prefix*`), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Requests per rate window (`limits.window_secs`, default a minute).
    #[arg(long)]
    pub rpm: Option<i64>,
    /// Tokens per rate window, counting each request's estimate until its usage is known.
    #[arg(long)]
    pub tpm: Option<i64>,
    /// Tokens this key may use per budget period.
    #[arg(long)]
    pub token_budget: Option<i64>,
    /// CNY this key may spend per budget period (by the price table).
    #[arg(long)]
    pub cost_budget: Option<f64>,
    /// When the budgets start over: none (never), daily or monthly (UTC).
    #[arg(long, value_enum)]
    pub budget_period: Option<BudgetPeriod>,
    /// Expiry as RFC 3339, e.g. 2027-01-01T00:00:00Z.
    #[arg(long)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as shown to operators: never the secret or its hash.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub team: String,
    pub models: Option<Vec<String>>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub token_budget: Option<i64>,
    pub cost_budget: Option<f64>,
    pub budget_period: BudgetPeriod,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The answer to a create: the view plus the full key, shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub view: KeyView,
}

impl From<&KeyRecord> for KeyView {
    fn from(record: &KeyRecord) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            team: record.team.clone(),
            models: record
                .models
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            rpm: record.rpm,
            tpm: record.tpm,
            token_budget: record.token_budget,
            cost_budget: record.cost_budget,
            budget_period: BudgetPeriod::parse(&record.budget_period),
            expires_at: record.expires_at,
            created_at: record.created_at,
            revoked_at: record.revoked_at,
        }
    }
}

impl CreateKey {
    pub fn validate(&self) -> Result<(), ApiError> {
        for (field, value) in [("name", &self.name), ("team", &self.team)] {
            no_control_characters(field, value)?;
            if value.trim().is_empty() || value.len() > 200 {
                return Err(ApiError::invalid_request(format!(
                    "`{field}` must be 1 to 200 characters."
                ))
                .param(field));
            }
        }
        if let Some(models) = &self.models {
            for model in models {
                no_control_characters("models", model)?;
            }
            if models.is_empty() || models.iter().any(|m| m.trim().is_empty()) {
                return Err(ApiError::invalid_request(
                    "`models` must list at least one non-empty model name.",
                )
                .param("models"));
            }
        }
        validate_limits(
            [self.rpm, self.tpm, self.token_budget],
            self.cost_budget,
            self.expires_at,
        )
    }
}

/// Refuses NUL and other control characters: they have no place in names or ids, and
/// PostgreSQL cannot store NUL in text at all.
pub fn no_control_characters(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(format!(
            "`{field}` must not contain control characters."
        ))
        .param(field));
    }
    Ok(())
}

/// Validates and stores a new key; returns it with the full secret key and the in-memory form.
pub async fn create_key(db: &Db, request: CreateKey) -> Result<(CreatedKey, ApiKey), ApiError> {
    request.validate()?;
    let generated = generate();
    let new = NewKey {
        id: generated.id,
        name: request.name.trim().to_owned(),
        team: request.team.trim().to_owned(),
        secret_hash: generated.secret_hash,
        models: request.models,
        rpm: request.rpm,
        tpm: request.tpm,
        token_budget: request.token_budget,
        cost_budget: request.cost_budget,
        budget_period: request
            .budget_period
            .unwrap_or_default()
            .as_str()
            .to_owned(),
        expires_at: request.expires_at,
    };
    let record = db
        .insert_key(&new)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let key = ApiKey::from_record(&record)
        .ok_or_else(|| ApiError::internal(&"a stored key did not read back"))?;
    Ok((
        CreatedKey {
            key: generated.full,
            view: KeyView::from(&record),
        },
        key,
    ))
}

/// Checks limits being set: counts positive, a cost budget positive and finite, an expiry in
/// the future.
pub fn validate_limits(
    counts: [Option<i64>; 3],
    cost_budget: Option<f64>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    for (field, value) in ["rpm", "tpm", "token_budget"].into_iter().zip(counts) {
        if value.is_some_and(|v| v <= 0) {
            return Err(ApiError::invalid_request(format!(
                "`{field}` must be a positive integer."
            ))
            .param(field));
        }
    }
    if cost_budget.is_some_and(|c| !c.is_finite() || c <= 0.0) {
        return Err(
            ApiError::invalid_request("`cost_budget` must be a positive number of CNY.")
                .param("cost_budget"),
        );
    }
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(
            ApiError::invalid_request("`expires_at` must be in the future.").param("expires_at"),
        );
    }
    Ok(())
}
