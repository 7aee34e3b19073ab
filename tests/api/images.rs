//! `/v1/images/generations` end to end: `n` calls, `b64_json` from the upstream's image host
//! within its size cap, refusals, and the row with its image count and cost.

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{error_of, request_id, row_of, spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

async fn generate(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/images/generations"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The image files the gateway downloaded from the emulator, in order.
fn downloads(app: &TestApp) -> Vec<String> {
    app.emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/files/images/"))
        .map(|r| r.path)
        .collect()
}

async fn two_images_as_b64_are_the_served_bytes_with_one_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let body = json!({"model": "cogview-4-250304", "prompt": "a red kite", "n": 2,
        "size": "1792x1024", "quality": "hd", "style": "vivid", "response_format": "b64_json"});
    let response = generate(&app, &key, body).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let answer: Value = response.json().await.unwrap();
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let calls: Vec<Value> = app
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/images/generations"))
        .map(|r| r.body)
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["size"].clone(), calls[0]["quality"].clone()),
        (json!("1344x768"), json!("hd"))
    );
    assert!(calls[0].get("style").is_none() && calls[0].get("n").is_none());
    let served: Vec<Vec<u8>> = downloads(&app)
        .iter()
        .map(|path| app.emulator.image_bytes(path).unwrap())
        .collect();
    for item in data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["b64_json"].as_str().unwrap())
            .unwrap();
        assert!(served.contains(&bytes));
    }
    let row = row_of(&app.db, &id).await;
    assert_eq!(
        (row.endpoint.as_str(), row.image_count, row.status_code),
        ("images", 2, 200)
    );
    assert_eq!(
        (row.usage_source.as_str(), row.total_tokens),
        ("upstream", 0)
    );
    assert!((row.cost.unwrap() - 0.12).abs() < 1e-9);
    app.shutdown().await;
}

async fn an_image_past_the_size_cap_fails_but_is_still_counted(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.images.max_image_bytes = 1 << 20).await;
    let key = app.key().await;
    let body =
        json!({"model": "cogview-4", "prompt": "#big-image huge", "response_format": "b64_json"});
    let response = generate(&app, &key, body).await;
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    assert_eq!(error_of(response).await["code"], "upstream_image_too_large");
    let row = row_of(&app.db, &id).await;
    assert_eq!((row.status_code, row.image_count), (502, 1), "{row:?}");
    app.shutdown().await;
}

async fn what_cogview_cannot_do_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = generate(
        &app,
        &key,
        json!({"model": "cogview-4", "prompt": "x", "size": "100x100"}),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["param"], "size");
    let response = generate(
        &app,
        &key,
        json!({"model": "cogview-4", "prompt": "x", "n": 11}),
    )
    .await;
    assert_eq!(error_of(response).await["param"], "n");
    let response = app
        .http
        .post(app.url("/v1/images/edits"))
        .bearer_auth(&key)
        .body("--x--")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error = error_of(response).await;
    assert!(error["message"].as_str().unwrap().contains("CogView"));
    assert!(app.emulator.requests().is_empty());
    app.shutdown().await;
}

on_both_backends!(
    two_images_as_b64_are_the_served_bytes_with_one_row,
    an_image_past_the_size_cap_fails_but_is_still_counted,
    what_cogview_cannot_do_is_refused,
);
