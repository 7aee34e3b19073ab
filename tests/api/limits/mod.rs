//! Limits and budgets: rpm and tpm per key, key and team budgets, shared by replicas through
//! the database or Redis, and what happens when the counter store is down.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glm_gateway::config::{Config, LimitStore, StoreErrorPolicy};
use serde_json::{json, Value};

use crate::helpers::{
    error_of, spawn_app_with, spawn_replica, wait_for_rows, Backend, TestApp, ADMIN_TOKEN,
};
use crate::on_both_backends;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Emulator usage of `small("")`: 7 prompt + 10 completion = 17 tokens; the gateway's estimate
/// is 4 (10 characters) + max_tokens 20 = 24. With `#slow 100`: 19 used, 27 estimated.
fn small(extra: &str) -> Value {
    json!({
        "model": "glm-4.7",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": format!("#chunks 10 {extra}").trim()}]
    })
}

fn short_window(config: &mut Config) {
    config.limits.window = Duration::from_secs(2);
}

/// Sleeps until just after the next boundary of a `secs`-second window, so that a test's
/// requests fall in one window.
async fn next_window(secs: u64) {
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let into = now % (secs * 1000);
    tokio::time::sleep(Duration::from_millis(secs * 1000 - into + 30)).await;
}

async fn key_with(app: &TestApp, team: &str, limits: Value) -> (String, String) {
    let mut body = json!({"name": "limited", "team": team});
    body.as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    let created = app.create_key(body).await;
    (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

async fn patch_key(app: &TestApp, id: &str, body: Value) -> Value {
    let response = app
        .http
        .patch(app.url(&format!("/admin/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn put_team(app: &TestApp, team: &str, body: Value) -> Value {
    let response = app
        .http
        .put(app.url(&format!("/admin/teams/{team}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn assert_rate_limited(response: reqwest::Response, kind: &str) {
    assert_eq!(response.status(), 429);
    assert!(header(&response, "retry-after").parse::<u64>().unwrap() >= 1);
    // Requests: none left; tokens: fewer left than the request's estimate (24).
    let remaining: i64 = header(&response, &format!("x-ratelimit-remaining-{kind}"))
        .parse()
        .unwrap();
    assert!(
        remaining < if kind == "requests" { 1 } else { 24 },
        "{remaining}"
    );
    assert!(header(&response, &format!("x-ratelimit-reset-{kind}")).ends_with('s'));
    let error = error_of(response).await;
    assert_eq!(error["type"], kind);
    assert_eq!(error["code"], "rate_limit_exceeded");
}

async fn assert_budget_spent(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "x-should-retry"), "false");
    let error = error_of(response).await;
    assert_eq!(error["type"], "insufficient_quota");
    assert_eq!(error["code"], "insufficient_quota");
}

async fn rpm_refuses_past_the_limit_per_key_until_the_window_ends(backend: Backend) {
    let app = spawn_app_with(backend, short_window).await;
    let (limited, _) = key_with(&app, "a", json!({"rpm": 2})).await;
    let (other, _) = key_with(&app, "a", json!({"rpm": 2})).await;
    next_window(2).await;
    let first = app.chat(&limited, small("")).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-requests"), "2");
    assert_eq!(header(&first, "x-ratelimit-remaining-requests"), "1");
    assert!(first.headers().get("x-ratelimit-limit-tokens").is_none());
    assert_eq!(app.chat(&limited, small("")).await.status(), 200);
    assert_rate_limited(app.chat(&limited, small("")).await, "requests").await;
    assert_eq!(
        app.emulator.request_count(),
        2,
        "the refused request reached upstream"
    );
    // Limits are per key.
    assert_eq!(app.chat(&other, small("")).await.status(), 200);
    next_window(2).await;
    assert_eq!(app.chat(&limited, small("")).await.status(), 200);
    // The refused request has its row, with its status.
    let rows = wait_for_rows(&app.db, 5).await;
    assert_eq!(rows.iter().filter(|r| r.status_code == 429).count(), 1);
}

async fn tpm_counts_estimates_and_refuses_requests_too_large(backend: Backend) {
    let app = spawn_app_with(backend, short_window).await;
    let (key, _) = key_with(&app, "a", json!({"tpm": 50})).await;
    next_window(2).await;
    let first = app.chat(&key, small("")).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), "50");
    assert_eq!(header(&first, "x-ratelimit-remaining-tokens"), "26");
    assert_eq!(app.chat(&key, small("")).await.status(), 200);
    assert_rate_limited(app.chat(&key, small("")).await, "tokens").await;
    let mut huge = small("");
    huge["max_tokens"] = json!(500);
    let response = app.chat(&key, huge).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "x-should-retry"), "false");
    assert_eq!(app.emulator.request_count(), 2);
    next_window(2).await;
    assert_eq!(app.chat(&key, small("")).await.status(), 200);
}

async fn patch_changes_and_clears_limits_at_once(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let (key, id) = key_with(&app, "a", json!({})).await;
    let view = patch_key(
        &app,
        &id,
        json!({"rpm": 1, "cost_budget": 5.0, "budget_period": "monthly"}),
    )
    .await;
    assert_eq!(
        (view["rpm"].clone(), view["budget_period"].clone()),
        (json!(1), json!("monthly"))
    );
    assert_eq!(app.chat(&key, small("")).await.status(), 200);
    assert_rate_limited(app.chat(&key, small("")).await, "requests").await;
    let view = patch_key(&app, &id, json!({"rpm": null})).await;
    assert!(view["rpm"].is_null());
    assert_eq!(view["cost_budget"], 5.0, "fields left out are kept");
    assert_eq!(app.chat(&key, small("")).await.status(), 200);
    let bad = app
        .http
        .patch(app.url(&format!("/admin/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"tpm": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

async fn a_team_budget_is_shared_by_its_keys(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let team = put_team(
        &app,
        "shared",
        json!({"token_budget": 40, "budget_period": "daily"}),
    )
    .await;
    assert_eq!(team["budget_period"], "daily");
    let (one, _) = key_with(&app, "shared", json!({})).await;
    let (two, _) = key_with(&app, "shared", json!({})).await;
    let (outsider, _) = key_with(&app, "other", json!({})).await;
    assert_eq!(app.chat(&one, small("")).await.status(), 200);
    // 17 spent (or 24 still held) + 24 estimated > 40.
    assert_budget_spent(app.chat(&two, small("")).await).await;
    assert_budget_spent(app.chat(&one, small("")).await).await;
    assert_eq!(app.chat(&outsider, small("")).await.status(), 200);
    assert_eq!(app.emulator.request_count(), 2);
    let teams: Value = app
        .http
        .get(app.url("/admin/teams"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(teams["data"][0]["team"], "shared");
    assert_eq!(teams["data"][0]["token_budget"], 40);
}

/// 50 requests at once against a budget worth about 10: what is admitted stays within the
/// budget plus one reservation, and the rest are told the quota is spent.
async fn concurrent_requests_overshoot_a_budget_by_at_most_one_reservation(backend: Backend) {
    const BUDGET: i64 = 190;
    const RESERVATION: i64 = 27;
    let app = spawn_app_with(backend, |_| {}).await;
    let (key, _) = key_with(&app, "a", json!({"token_budget": BUDGET})).await;
    let mut sent = 0;
    while sent < 200 {
        let requests = (0..50).map(|_| app.chat(&key, small("#slow 100")));
        let responses = futures_util::future::join_all(requests).await;
        sent += 50;
        let mut refused = 0;
        for response in responses {
            if response.status() == 429 {
                refused += 1;
                assert_budget_spent(response).await;
            } else {
                assert_eq!(response.status(), 200);
            }
        }
        if refused == 50 {
            break;
        }
    }
    let admitted = app.emulator.request_count();
    let rows = wait_for_rows(&app.db, sent).await;
    let used: i64 = rows.iter().map(|r| r.total_tokens).sum();
    assert_eq!(
        rows.iter().filter(|r| r.status_code == 200).count(),
        admitted
    );
    assert!(used <= BUDGET + RESERVATION, "used {used} of {BUDGET}");
    assert!(
        used >= BUDGET - RESERVATION,
        "the budget was not used up: {used}"
    );
}

on_both_backends!(
    rpm_refuses_past_the_limit_per_key_until_the_window_ends,
    tpm_counts_estimates_and_refuses_requests_too_large,
    patch_changes_and_clears_limits_at_once,
    a_team_budget_is_shared_by_its_keys,
    concurrent_requests_overshoot_a_budget_by_at_most_one_reservation,
);

fn redis_store(config: &mut Config) {
    short_window(config);
    config.limits.store = LimitStore::Redis;
    config.limits.redis_url = Some(REDIS_URL.to_owned());
}

/// Two gateways on one Postgres database share limits, through the database or Redis: a PATCH
/// and a revocation through one take effect in the other within a second.
async fn replicas_share_limits(tweak: fn(&mut Config)) {
    let first = spawn_app_with(Backend::Postgres, tweak).await;
    let second = spawn_replica(&first, tweak).await;
    let team = format!("team-{}", uuid::Uuid::new_v4().simple());
    let (key, id) = key_with(&first, &team, json!({})).await;
    patch_key(&first, &id, json!({"rpm": 3})).await;
    put_team(&first, &team, json!({"token_budget": 100})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    next_window(2).await;
    let apps = [&first, &second];
    for turn in 0..3 {
        assert_eq!(
            apps[turn % 2].chat(&key, small("")).await.status(),
            200,
            "turn {turn}"
        );
    }
    assert_rate_limited(second.chat(&key, small("")).await, "requests").await;
    assert_rate_limited(first.chat(&key, small("")).await, "requests").await;
    // 3 × 17 spent; two more fit the team budget of 100 (68 + 24), a third does not (85 + 24),
    // whichever replica they go to.
    next_window(2).await;
    assert_eq!(second.chat(&key, small("")).await.status(), 200);
    assert_eq!(first.chat(&key, small("")).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_budget_spent(second.chat(&key, small("")).await).await;
    assert_eq!(
        first.emulator.request_count() + second.emulator.request_count(),
        5
    );
    // A revocation through the first is refused by the second within a second.
    let revoked = first
        .http
        .delete(first.url(&format!("/admin/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let response = second.chat(&key, small("")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_of(response).await["code"], "api_key_revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_through_postgres() {
    replicas_share_limits(short_window).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_through_redis() {
    replicas_share_limits(redis_store).await;
}

async fn with_store_down(policy: StoreErrorPolicy) -> (TestApp, String) {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.store = LimitStore::Redis;
        config.limits.redis_url = Some("redis://127.0.0.1:1".to_owned());
        config.limits.on_store_error = policy;
    })
    .await;
    let (key, _) = key_with(&app, "a", json!({"rpm": 1, "token_budget": 10})).await;
    (app, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_fails_open_by_default() {
    let (app, key) = with_store_down(StoreErrorPolicy::Open).await;
    for _ in 0..3 {
        assert_eq!(app.chat(&key, small("")).await.status(), 200);
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("glm_gateway_limits_store_errors_total"),
        "{metrics}"
    );
    // A key without limits never touches the store.
    let plain = app.key().await;
    assert_eq!(app.chat(&plain, small("")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_refuses_when_closed() {
    let (app, key) = with_store_down(StoreErrorPolicy::Closed).await;
    let response = app.chat(&key, small("")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(error_of(response).await["code"], "limits_unavailable");
    assert_eq!(app.emulator.request_count(), 0);
    let plain = app.key().await;
    assert_eq!(app.chat(&plain, small("")).await.status(), 200);
}

mod leases;
