//! `/v1/embeddings` end to end: batches split and joined, encodings, refusals, and the row.

use base64::Engine;
use glm_gateway::emulator::{embedding_tokens, embedding_vector};
use serde_json::{json, Value};

use crate::helpers::{error_of, request_id, row_of, spawn_app, Backend, TestApp};
use crate::on_both_backends;

async fn embed(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/embeddings"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn upstream_calls(app: &TestApp) -> usize {
    app.emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/embeddings"))
        .count()
}

async fn a_hundred_inputs_are_two_calls_joined_in_order_with_one_exact_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let texts: Vec<String> = (0..100).map(|i| format!("document number {i}")).collect();
    let response = embed(
        &app,
        &key,
        json!({"model": "embedding-3", "input": texts, "dimensions": 256}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(upstream_calls(&app), 2);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 100);
    for (at, item) in data.iter().enumerate() {
        assert_eq!(item["index"], at);
        let got: Vec<f32> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, embedding_vector(&texts[at], 256), "item {at}");
    }
    let tokens: u64 = texts.iter().map(|t| embedding_tokens(t)).sum();
    let tokens = i64::try_from(tokens).unwrap();
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": tokens, "total_tokens": tokens})
    );
    let row = row_of(&app.db, &id).await;
    assert_eq!(
        (
            row.endpoint.as_str(),
            row.requested_model.as_deref(),
            row.upstream_model.as_deref()
        ),
        ("embeddings", Some("embedding-3"), Some("embedding-3"))
    );
    assert_eq!(
        (
            row.status_code,
            row.prompt_tokens,
            row.completion_tokens,
            row.total_tokens
        ),
        (200, tokens, 0, tokens)
    );
    assert_eq!(
        (row.usage_source.as_str(), row.image_count),
        ("upstream", 0)
    );
    let cost = row.cost.unwrap();
    assert!(
        (cost - tokens as f64 * 0.0005 / 1000.0).abs() < 1e-9,
        "{cost}"
    );
    app.shutdown().await;
}

async fn base64_is_the_upstream_vector_as_little_endian_float32(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let body = json!({"model": "embedding-3", "input": "hello", "encoding_format": "base64"});
    let answer: Value = embed(&app, &key, body).await.json().await.unwrap();
    let encoded = answer["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let vector: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(vector, embedding_vector("hello", 2048));
    let forwarded = &app.emulator.requests()[0].body;
    assert!(forwarded.get("encoding_format").is_none(), "{forwarded}");
    app.shutdown().await;
}

async fn token_ids_are_refused_before_the_upstream_with_a_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = embed(
        &app,
        &key,
        json!({"model": "embedding-3", "input": [[1, 2, 3]]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let id = request_id(&response);
    let error = error_of(response).await;
    assert_eq!(error["param"], "input");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("check_embedding_ctx_length=False"));
    assert_eq!(upstream_calls(&app), 0);
    let row = row_of(&app.db, &id).await;
    assert_eq!(
        (row.status_code, row.usage_source.as_str(), row.total_tokens),
        (400, "none", 0)
    );
    let response = embed(
        &app,
        &key,
        json!({"model": "embedding-2", "input": "x", "dimensions": 512}),
    )
    .await;
    assert_eq!(error_of(response).await["param"], "dimensions");
    app.shutdown().await;
}

on_both_backends!(
    a_hundred_inputs_are_two_calls_joined_in_order_with_one_exact_row,
    base64_is_the_upstream_vector_as_little_endian_float32,
    token_ids_are_refused_before_the_upstream_with_a_row,
);
