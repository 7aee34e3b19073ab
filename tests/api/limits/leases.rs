//! Rate windows spent through leases: replicas on one PostgreSQL database, each taking a share
//! of a key's window at once from the database or Redis, never admit more than the limit
//! together, and every admitted request is one that reached upstream.

use std::time::Duration;

use futures_util::future::join_all;
use glm_gateway::config::{Config, LimitStore};
use serde_json::json;

use super::{key_with, next_window, small, REDIS_URL};
use crate::helpers::{spawn_app_with, spawn_replica, wait_for_rows, Backend, TestApp};

const WINDOW_SECS: u64 = 5;
/// Not a multiple of a lease (4 beyond the request), so the last lease must be refused.
const RPM: i64 = 42;

fn leases_of_a_tenth(config: &mut Config) {
    config.limits.window = Duration::from_secs(WINDOW_SECS);
    config.limits.lease_fraction = 0.1;
}

fn leases_in_redis(config: &mut Config) {
    leases_of_a_tenth(config);
    config.limits.store = LimitStore::Redis;
    config.limits.redis_url = Some(REDIS_URL.to_owned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_spending_leases_in_postgres_never_pass_the_limit() {
    let (first, id, admitted) = spend_concurrently(leases_of_a_tenth).await;
    // The store's window holds what the replicas took, never past the limit.
    let pool = sqlx::PgPool::connect(&first.database_url).await.unwrap();
    let (taken,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(requests), 0) FROM limit_windows WHERE scope = $1")
            .bind(format!("key:{id}"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        (admitted as i64..=RPM).contains(&taken),
        "the store counted {taken} for {admitted} admitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_spending_leases_in_redis_never_pass_the_limit() {
    spend_concurrently(leases_in_redis).await;
}

/// Two replicas share 60 concurrent requests of one key with `rpm` 42. Returns the first
/// replica, the key's id and how many were admitted.
async fn spend_concurrently(tweak: fn(&mut Config)) -> (TestApp, String, usize) {
    let first = spawn_app_with(Backend::Postgres, tweak).await;
    let second = spawn_replica(&first, tweak).await;
    let team = format!("team-{}", uuid::Uuid::new_v4().simple());
    let (key, id) = key_with(&first, &team, json!({"rpm": RPM})).await;
    next_window(WINDOW_SECS).await;
    let requests = (0..60).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        let key = key.clone();
        async move { app.chat(&key, small("")).await.status().as_u16() }
    });
    let statuses = join_all(requests).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(admitted + refused, 60, "{statuses:?}");
    // Each replica leases 4 beyond a request; at most one replica's lease is left unspent.
    assert!(
        (RPM as usize - 4..=RPM as usize).contains(&admitted),
        "{admitted} admitted of rpm {RPM}"
    );
    let upstream = first.emulator.request_count() + second.emulator.request_count();
    assert_eq!(
        upstream, admitted,
        "every admitted request, and no other, reached upstream"
    );
    let rows = wait_for_rows(&first.db, 60).await;
    assert_eq!(
        rows.iter().filter(|r| r.status_code == 429).count(),
        refused
    );
    (first, id, admitted)
}
