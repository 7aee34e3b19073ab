//! Bad input of every kind gets an OpenAI-shaped error with the right status.

use serde_json::json;

use crate::helpers::{error_of, spawn_app, spawn_app_with, Backend};
use crate::on_both_backends;

async fn malformed_bodies_get_400_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let post = |body: &'static str| {
        app.http
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .body(body)
            .send()
    };

    let error = error_of(
        post("{\"model\": \"glm-4.7\", \"messages\": [")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error["code"], "invalid_json");
    let response = post("{\"model\": \"glm-4.7\", \"messages\": [{\"role\":\"user\",\"content\":\"x\"}], \"temperature\": \"hot\"}").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["param"], "temperature");
    let response = post("{\"messages\": [{\"role\":\"user\",\"content\":\"x\"}]}")
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["param"], "model");
    let response = post("{\"model\": \"glm-4.7\", \"messages\": \"hi\"}")
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["param"], "messages");
    let response = post("[1, 2]").await.unwrap();
    assert_eq!(response.status(), 400);
    error_of(response).await;
    let response = post("{\"model\": \"\", \"messages\": [{\"role\":\"user\",\"content\":\"x\"}]}")
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["param"], "model");
    assert_eq!(app.emulator.request_count(), 0);
    app.shutdown().await;
}

async fn unknown_routes_and_methods_get_404_and_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .http
        .post(app.url("/v1/completions"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await["code"], "unknown_url");
    let response = app
        .http
        .get(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    error_of(response).await;
    app.shutdown().await;
}

async fn oversized_bodies_get_413(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.server.max_body_bytes = 4096).await;
    let key = app.key().await;
    let long = "x".repeat(10_000);
    let response = app
        .chat(
            &key,
            json!({"model": "glm-4.7", "messages": [{"role": "user", "content": long}]}),
        )
        .await;
    assert_eq!(response.status(), 413);
    assert_eq!(error_of(response).await["code"], "request_too_large");
    app.shutdown().await;
}

on_both_backends!(
    malformed_bodies_get_400_naming_the_field,
    unknown_routes_and_methods_get_404_and_405,
    oversized_bodies_get_413,
);
