//! Errors from the edges of the router are OpenAI-shaped and, under `/v1`, recorded: path
//! segments that do not decode, a wrong method, control characters in admin input.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{closed_within, connect};
use crate::helpers::{error_of, request_id, row_of, spawn_app, Backend, ADMIN_TOKEN};
use crate::on_both_backends;

/// Requests hyper refuses before any layer runs: too many header fields (431) and a control
/// character in a header value (400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_cannot_parse_get_json_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (request, status, code) in [
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
            "431",
            "request_header_too_large",
        ),
        (
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n".to_owned(),
            "400",
            "invalid_http_request",
        ),
    ] {
        let mut stream = connect(&app).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains("x-request-id: "), "{answer}");
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], code);
        assert!(body["error"].get("param").is_some());
    }
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    app.shutdown().await;
}

async fn path_segments_that_do_not_decode_get_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .http
        .get(app.url("/v1/models/%ff"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let id = request_id(&response);
    assert_eq!(error_of(response).await["code"], "invalid_path");
    assert_eq!(row_of(&app.db, &id).await.status_code, 400);
    for path in ["/admin/keys/%ff", "/admin/keys/%00", "/admin/keys/a%0Ab"] {
        let response = app
            .http
            .delete(app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        error_of(response).await;
    }
    app.shutdown().await;
}

async fn a_wrong_method_needs_a_key_and_leaves_a_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .http
        .get(app.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the key is checked first");
    error_of(response).await;
    let response = app
        .http
        .get(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let id = request_id(&response);
    assert_eq!(error_of(response).await["code"], "method_not_allowed");
    let row = row_of(&app.db, &id).await;
    assert_eq!((row.status_code, row.endpoint.as_str()), (405, "chat"));
    app.shutdown().await;
}

async fn control_characters_in_admin_input_get_400_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    for (body, field) in [
        (json!({"name": "a\u{0}b", "team": "t"}), "name"),
        (json!({"name": "a", "team": "t\u{7}"}), "team"),
        (
            json!({"name": "a", "team": "t", "models": ["glm\u{0}"]}),
            "models",
        ),
    ] {
        let response = app
            .http
            .post(app.url("/admin/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_of(response).await["param"], field);
    }
    app.shutdown().await;
}

on_both_backends!(
    path_segments_that_do_not_decode_get_400,
    a_wrong_method_needs_a_key_and_leaves_a_row,
    control_characters_in_admin_input_get_400_naming_the_field,
);
