//! Downstream API keys: `sk-glm-<id>-<secret>`. The id finds the key; only SHA-256 of the
//! secret is stored and it is compared in constant time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{BudgetPeriod, KeyLimits};
use crate::store::KeyRecord;

pub mod admin;
mod cache;
mod lookup;
mod middleware;
pub mod update;

pub use cache::KeyCache;
pub use middleware::{bearer_token, require_api_key};

const PREFIX: &str = "sk-glm-";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 40;

/// A freshly made key; `secret` is shown once and never stored.
pub struct GeneratedKey {
    pub id: String,
    pub secret_hash: String,
    pub full: String,
}

pub fn generate() -> GeneratedKey {
    let mut rng = rand::thread_rng();
    let id = Alphanumeric
        .sample_string(&mut rng, ID_LEN)
        .to_ascii_lowercase();
    let secret = Alphanumeric.sample_string(&mut rng, SECRET_LEN);
    GeneratedKey {
        secret_hash: hash_secret(&secret),
        full: format!("{PREFIX}{id}-{secret}"),
        id,
    }
}

/// Splits a presented key into (id, secret) without judging either.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A key as the request path sees it: the row, with the allowlist parsed and the hash decoded.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// Shared, so that metrics label requests with it without a copy.
    pub team: Arc<str>,
    secret_hash: [u8; 32],
    /// Model names or `prefix*` patterns; `None` allows all.
    pub models: Option<Vec<String>>,
    pub limits: KeyLimits,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// `None` for a row whose hash or allowlist is unreadable: such a key never authenticates.
    pub fn from_record(record: &KeyRecord) -> Option<Self> {
        let mut secret_hash = [0u8; 32];
        hex::decode_to_slice(&record.secret_hash, &mut secret_hash).ok()?;
        let models = match &record.models {
            Some(text) => Some(serde_json::from_str(text).ok()?),
            None => None,
        };
        Some(Self {
            id: record.id.clone(),
            name: record.name.clone(),
            team: record.team.as_str().into(),
            secret_hash,
            models,
            limits: KeyLimits {
                rpm: record.rpm,
                tpm: record.tpm,
                token_budget: record.token_budget,
                cost_budget: record.cost_budget,
                budget_period: BudgetPeriod::parse(&record.budget_period),
            },
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
        })
    }

    pub fn secret_matches(&self, secret: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        presented.ct_eq(&self.secret_hash).into()
    }

    /// Whether the key may use a model, by the name the client sent or the GLM model it maps to.
    pub fn allows_model(&self, requested: &str, upstream: &str) -> bool {
        let Some(allowed) = &self.models else {
            return true;
        };
        allowed
            .iter()
            .any(|pattern| model_matches(pattern, requested) || model_matches(pattern, upstream))
    }
}

/// An allowlist entry matches exactly, unless it ends in `*`: then it admits every model it
/// prefixes (`glm-4.7-flash*` admits `glm-4.7-flashx` too, by design).
pub fn model_matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(models: Option<&str>) -> KeyRecord {
        KeyRecord {
            models: models.map(String::from),
            ..KeyRecord::unlimited("abc", "n", "t", hash_secret("s3cret"))
        }
    }

    #[test]
    fn generated_keys_parse_back_and_match_their_hash() {
        let key = generate();
        let (id, secret) = parse(&key.full).unwrap();
        assert_eq!(id, key.id);
        assert_eq!(hash_secret(secret), key.secret_hash);
        assert!(!key.secret_hash.contains(secret));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        for bad in [
            "",
            "sk-glm-",
            "sk-glm-abc",
            "sk-glm--secret",
            "sk-glm-abc-",
            "sk-other-abc-def",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn secret_comparison_accepts_only_the_right_secret() {
        let key = ApiKey::from_record(&record(None)).unwrap();
        assert!(key.secret_matches("s3cret"));
        assert!(!key.secret_matches("s3cret "));
        assert!(!key.secret_matches(""));
    }

    #[test]
    fn allowlist_matches_requested_or_upstream_names_and_prefixes() {
        let key = ApiKey::from_record(&record(Some(r#"["gpt-4o","glm-4.7*"]"#))).unwrap();
        assert!(key.allows_model("gpt-4o", "glm-4.6v"));
        assert!(key.allows_model("gpt-4", "glm-4.7"));
        assert!(key.allows_model("glm-4.7-flash", "glm-4.7-flash"));
        assert!(!key.allows_model("glm-5", "glm-5"));
        assert!(ApiKey::from_record(&record(None))
            .unwrap()
            .allows_model("anything", "anything"));
    }

    #[test]
    fn allowlist_entries_are_exact_unless_they_end_in_a_star() {
        let key =
            ApiKey::from_record(&record(Some(r#"["gpt-4o-mini","glm-4.7-flash*"]"#))).unwrap();
        assert!(key.allows_model("gpt-4o-mini", "glm-4.6v-flash"));
        assert!(!key.allows_model("gpt-4o-mini-2024-07-18", "glm-4.6v-flash"));
        assert!(!key.allows_model("gpt-4o", "glm-4.6v"));
        assert!(key.allows_model("glm-4.7-flash", "glm-4.7-flash"));
        assert!(key.allows_model("glm-4.7-flashx", "glm-4.7-flashx"));
        assert!(!key.allows_model("glm-4.7", "glm-4.7"));
    }

    #[test]
    fn unreadable_rows_never_authenticate() {
        let mut bad = record(None);
        bad.secret_hash = "zz".into();
        assert!(ApiKey::from_record(&bad).is_none());
        assert!(ApiKey::from_record(&record(Some("not json"))).is_none());
    }
}
