//! Upstream calls that fail before their answer began are tried again: on another key, with a
//! new `request_id`, then on a fallback model; nothing is tried again once bytes flowed, and a
//! bad request never is.

use std::time::{Duration, Instant};

use glm_gateway::config::{Config, Secret};
use glm_gateway::emulator::{self, EmulatorConfig, EmulatorHandle};
use serde_json::{json, Value};

use crate::helpers::{error_of, spawn_app, spawn_app_with, sse_payloads, Backend, TestApp};

const KEY_ONE: &str = "key-one.key-one-secret-0123456789";
const KEY_TWO: &str = "key-two.key-two-secret-0123456789";

fn ask(text: &str, stream: bool) -> Value {
    json!({"model": "glm-4.7", "messages": [{"role": "user", "content": text}], "stream": stream})
}

/// A gateway with the two keys `KEY_ONE` and `KEY_TWO`, in front of an emulator of its own that
/// accepts both (the harness's emulator knows only one key).
async fn two_key_app(tweak: impl FnOnce(&mut Config)) -> (TestApp, EmulatorHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let emulator = emulator::spawn(
        listener,
        EmulatorConfig {
            api_keys: vec![KEY_ONE.into(), KEY_TWO.into()],
            chunk_delay: Duration::from_millis(5),
        },
    );
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.zhipu.base_url = format!("http://{addr}/api/paas/v4");
        config.zhipu.api_keys = vec![Secret::new(KEY_ONE), Secret::new(KEY_TWO)];
        tweak(config);
    })
    .await;
    (app, emulator)
}

fn request_ids(emulator: &EmulatorHandle) -> Vec<String> {
    emulator
        .requests()
        .iter()
        .map(|r| r.body["request_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_key_is_passed_over_and_no_client_sees_it() {
    let (app, emulator) = two_key_app(|_| {}).await;
    let key = app.key().await;
    let text = "hi #only-key key-one #error 1302";
    for stream in [false, true, false, true] {
        let response = app.chat(&key, ask(text, stream)).await;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("\"error\""), "{body}");
    }
    // The first call met key one's 429 and was retried on key two; key one then cooled down.
    let count = emulator.request_count();
    assert!((5..=6).contains(&count), "{count} upstream requests");
    let ids = request_ids(&emulator);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "request ids reused: {ids:?}");
    let ready = app.get_json("/readyz").await;
    let keys = ready["upstream_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{ready}");
    assert_eq!(keys[0]["id"], "key-one");
    assert_eq!(keys[1]["id"], "key-two");
    assert_eq!(keys[1]["state"], "ok");
    assert!(keys[1]["until"].is_null());
    if keys[0]["state"] == "cooling" {
        assert!(keys[0]["until"].is_string(), "{ready}");
    }
    assert!(!ready.to_string().contains("secret"), "{ready}");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("glm_gateway_upstream_retries_total{reason=\"rate_limited\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("glm_gateway_upstream_key_available{key_id=\"key-two\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("key-one-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_balance_is_retried_on_another_key_but_never_the_same() {
    let (app, emulator) = two_key_app(|_| {}).await;
    let key = app.key().await;
    let response = app
        .chat(&key, ask("hi #only-key key-one #error 1113", false))
        .await;
    assert_eq!(response.status(), 200);
    let ready = app.get_json("/readyz").await;
    let states: Vec<&str> = ready["upstream_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    let calls = emulator.request_count();
    // Round-robin may have started on key two (one call) or key one (taken out, then key two).
    assert!(
        (calls == 1 && states == ["ok", "ok"]) || (calls == 2 && states == ["out", "ok"]),
        "{calls} calls, {states:?}"
    );
    // Every key broke: one call per key, then the client gets the error.
    let response = app.chat(&key, ask("hi #error 1113", false)).await;
    assert_eq!(response.status(), 429);
    let before = calls;
    assert!(emulator.request_count() - before <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_before_the_first_byte_is_retried_with_a_new_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.key().await;
    for (text, stream) in [("a #once #error 1234", false), ("b #once #http html", true)] {
        let before = app.emulator.request_count();
        let response = app.chat(&key, ask(text, stream)).await;
        assert_eq!(response.status(), 200, "{text}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("\"error\""), "{body}");
        assert_eq!(app.emulator.request_count() - before, 2, "{text}");
    }
    let ids = request_ids(&app.emulator);
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[2], ids[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_after_the_first_byte_is_not_retried() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.key().await;
    let response = app.chat(&key, ask("hi #midstream-error", true)).await;
    assert_eq!(response.status(), 200);
    let payloads = sse_payloads(&response.text().await.unwrap());
    let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{last}");
    assert_eq!(app.emulator.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_not_retried() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.key().await;
    let response = app.chat(&key, ask("hi #error 1214", false)).await;
    assert_eq!(response.status(), 400);
    error_of(response).await;
    assert_eq!(app.emulator.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_a_first_byte_is_a_504_within_the_first_byte_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.zhipu.first_byte_timeout = Duration::from_secs(1);
    })
    .await;
    let key = app.key().await;
    let started = Instant::now();
    let response = app.chat(&key, ask("hi #hang", true)).await;
    assert_eq!(response.status(), 504);
    let error = error_of(response).await;
    assert_eq!(error["code"], "upstream_timeout", "{error}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    // One key: a silent stream is not tried on it again.
    assert_eq!(app.emulator.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_a_first_byte_is_retried_on_another_key() {
    // The per-model table sets the limit; the section's default stays long.
    let (app, emulator) = two_key_app(|config| {
        let mut config_toml = Config::from_toml(
            "[zhipu.timeouts.\"glm-4*\"]\nfirst_byte_secs = 1\n",
            &|_| None,
        )
        .unwrap();
        config.zhipu.model_timeouts = std::mem::take(&mut config_toml.zhipu.model_timeouts);
    })
    .await;
    let key = app.key().await;
    for _ in 0..2 {
        let started = Instant::now();
        let response = app
            .chat(&key, ask("hi #only-key key-one #hang", true))
            .await;
        assert_eq!(response.status(), 200);
        let payloads = sse_payloads(&response.text().await.unwrap());
        assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // At least one of the two calls started on key one and waited 1 s for nothing.
    let count = emulator.request_count();
    assert!((3..=4).contains(&count), "{count} upstream requests");
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("glm_gateway_upstream_retries_total{reason=\"first_byte_timeout\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_failed_every_attempt_falls_back_to_the_next() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.zhipu.max_attempts = 1;
        config
            .zhipu
            .fallbacks
            .insert("glm-4.7".into(), vec!["glm-4.7-flash".into()]);
    })
    .await;
    let key = app.key().await;
    let response = app.chat(&key, ask("hi #once #error 1234", false)).await;
    assert_eq!(response.status(), 200);
    let models: Vec<Value> = app
        .emulator
        .requests()
        .iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert_eq!(models, vec![json!("glm-4.7"), json!("glm-4.7-flash")]);
    // A bad request does not fall back.
    let response = app.chat(&key, ask("hi #error 1214", false)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(app.emulator.request_count(), 3);
}
