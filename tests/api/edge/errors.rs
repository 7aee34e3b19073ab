//! Errors from the edges of the router are OpenAI-shaped and, under `/v1`, recorded: path
//! segments that do not decode, a wrong method, control characters in admin input.

use serde_json::json;

use crate::helpers::{error_of, request_id, row_of, spawn_app, Backend, ADMIN_TOKEN};
use crate::on_both_backends;

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
        (json!({"name": "a", "team": "t", "models": ["glm\u{0}"]}), "models"),
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
