//! The limiter at chosen times: daily budgets start over at UTC midnight, and reservations of
//! requests that never settle stop counting when they expire.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::config::Config;
use crate::store::KeyRecord;

fn key(token_budget: i64, period: &str) -> ApiKey {
    let record = KeyRecord {
        id: "k".into(),
        name: "n".into(),
        team: "t".into(),
        secret_hash: crate::keys::hash_secret("s"),
        models: None,
        rpm: None,
        tpm: None,
        token_budget: Some(token_budget),
        cost_budget: None,
        budget_period: period.into(),
        expires_at: None,
        created_at: Utc::now(),
        revoked_at: None,
    };
    ApiKey::from_record(&record).unwrap()
}

async fn limiter() -> Limiter {
    let mut config = Config::from_toml("", &|_| None).unwrap();
    config.limits.store = LimitStore::Memory;
    let db = Db::connect("sqlite::memory:").await.unwrap();
    Limiter::new(&config.limits, &db, crate::catalogue::PriceBook::builtin()).unwrap()
}

const ESTIMATE: Estimate = Estimate {
    tokens: 24,
    cost: None,
};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

#[tokio::test]
async fn a_daily_budget_starts_over_at_utc_midnight() {
    let limiter = limiter().await;
    let key = key(50, "daily");
    let evening = at("2026-11-30T23:00:00Z");
    for id in ["a", "b"] {
        assert!(limiter.admit_at(id, &key, ESTIMATE, evening).await.is_ok());
    }
    let refused = limiter
        .admit_at("c", &key, ESTIMATE, evening)
        .await
        .unwrap_err();
    assert_eq!(Some(refused.code.as_str()), Some("insufficient_quota"));
    assert_eq!(refused.retry_after, Some(3600));
    let morning = at("2026-12-01T00:00:01Z");
    assert!(limiter.admit_at("d", &key, ESTIMATE, morning).await.is_ok());
}

#[tokio::test]
async fn reservations_that_never_settle_expire() {
    let limiter = limiter().await;
    let key = key(50, "none");
    let start = at("2026-11-30T10:00:00Z");
    for id in ["a", "b"] {
        assert!(limiter.admit_at(id, &key, ESTIMATE, start).await.is_ok());
    }
    assert!(limiter.admit_at("c", &key, ESTIMATE, start).await.is_err());
    let later = start + Duration::seconds(961);
    assert!(limiter.admit_at("d", &key, ESTIMATE, later).await.is_ok());
}
