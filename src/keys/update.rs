//! Changing a key's limits: one implementation behind `PATCH /admin/keys/{id}` and
//! `glm-gateway keys update`. A field left out is kept; JSON `null` (or a flag given without a
//! value) clears it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use super::admin::{validate_limits, KeyView};
use super::ApiKey;
use crate::domain::BudgetPeriod;
use crate::error::{ApiError, ErrorCode};
use crate::store::{Db, KeyChange};

/// The body of `PATCH /admin/keys/{id}` and the flags of `glm-gateway keys update`.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    /// Models this key may use (names or `prefix*`), comma-separated; without a value: all.
    #[arg(long, num_args = 0..=1, value_parser = parse_models)]
    #[serde(default, deserialize_with = "present")]
    pub models: Option<Option<ModelList>>,
    /// Requests per rate window; without a value: no limit.
    #[arg(long, num_args = 0..=1)]
    #[serde(default, deserialize_with = "present")]
    pub rpm: Option<Option<i64>>,
    /// Tokens per rate window; without a value: no limit.
    #[arg(long, num_args = 0..=1)]
    #[serde(default, deserialize_with = "present")]
    pub tpm: Option<Option<i64>>,
    /// Tokens per budget period; without a value: no budget.
    #[arg(long, num_args = 0..=1)]
    #[serde(default, deserialize_with = "present")]
    pub token_budget: Option<Option<i64>>,
    /// CNY per budget period; without a value: no budget.
    #[arg(long, num_args = 0..=1)]
    #[serde(default, deserialize_with = "present")]
    pub cost_budget: Option<Option<f64>>,
    /// none, daily or monthly (UTC); without a value: none.
    #[arg(long, num_args = 0..=1, value_enum)]
    #[serde(default, deserialize_with = "present")]
    pub budget_period: Option<Option<BudgetPeriod>>,
    /// Expiry as RFC 3339; without a value: never.
    #[arg(long, num_args = 0..=1)]
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// A model allowlist: a JSON array, or comma-separated on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ModelList(pub Vec<String>);

fn parse_models(text: &str) -> Result<ModelList, String> {
    Ok(ModelList(
        text.split(',').map(|m| m.trim().to_owned()).collect(),
    ))
}

/// A field that is present, even as `null`, is `Some`; an absent one stays `None` (default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl UpdateKey {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(Some(ModelList(models))) = &self.models {
            if models.is_empty() || models.iter().any(|m| m.trim().is_empty()) {
                return Err(ApiError::invalid_request(
                    "`models` must list at least one non-empty model name.",
                )
                .param("models"));
            }
        }
        validate_limits(
            [
                self.rpm.flatten(),
                self.tpm.flatten(),
                self.token_budget.flatten(),
            ],
            self.cost_budget.flatten(),
            self.expires_at.flatten(),
        )
    }
}

/// Validates and applies a change; returns the key as shown and as the request path sees it.
pub async fn update_key(
    db: &Db,
    id: &str,
    request: UpdateKey,
) -> Result<(KeyView, ApiKey), ApiError> {
    request.validate()?;
    let change = KeyChange {
        models: request.models.map(|m| m.map(|ModelList(list)| list)),
        rpm: request.rpm,
        tpm: request.tpm,
        token_budget: request.token_budget,
        cost_budget: request.cost_budget,
        budget_period: request
            .budget_period
            .map(|p| p.unwrap_or_default().as_str().to_owned()),
        expires_at: request.expires_at,
    };
    let record = db
        .update_key(id, &change)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::KeyNotFound, format!("No key has the id `{id}`."))
        })?;
    let key = ApiKey::from_record(&record)
        .ok_or_else(|| ApiError::internal(&"an updated key did not read back"))?;
    Ok((KeyView::from(&record), key))
}
