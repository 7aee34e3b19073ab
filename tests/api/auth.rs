//! Downstream keys: each way a key can be wrong gets its own OpenAI-shaped error.

use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use crate::helpers::{error_of, spawn_app, Backend, ADMIN_TOKEN};
use crate::on_both_backends;

fn hello(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn missing_wrong_and_malformed_keys_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .json(&hello("glm-4.7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_of(response).await["code"], "missing_api_key");

    let (id_part, _) = key.rsplit_once('-').unwrap();
    for wrong in [
        format!("{id_part}-wrongsecret"),
        "sk-glm-nosuchid-secret".into(),
        "not-a-key".into(),
        key.to_uppercase(),
    ] {
        let response = app.chat(&wrong, hello("glm-4.7")).await;
        assert_eq!(response.status(), 401, "{wrong}");
        let error = error_of(response).await;
        assert_eq!(error["code"], "invalid_api_key");
        assert_eq!(error["type"], "invalid_request_error");
    }
    assert_eq!(
        app.emulator.request_count(),
        0,
        "refused requests never reach the upstream"
    );
    assert_eq!(app.chat(&key, hello("glm-4.7")).await.status(), 200);
    app.shutdown().await;
}

async fn revoked_keys_are_refused_at_once_and_across_processes(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.create_key(json!({"name": "a", "team": "t"})).await;
    let key = first["key"].as_str().unwrap();
    assert_eq!(app.chat(key, hello("glm-4.7")).await.status(), 200);
    let id = first["id"].as_str().unwrap();
    let response = app
        .http
        .delete(app.url(&format!("/admin/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app.chat(key, hello("glm-4.7")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_of(response).await["code"], "api_key_revoked");

    // Revoked straight in the database, as `glm-gateway keys revoke` from another process does.
    let second = app.create_key(json!({"name": "b", "team": "t"})).await;
    let key = second["key"].as_str().unwrap();
    assert_eq!(app.chat(key, hello("glm-4.7")).await.status(), 200);
    app.db
        .revoke_key(second["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        app.chat(key, hello("glm-4.7")).await.status(),
        401,
        "revocation takes effect within a second"
    );
    app.shutdown().await;
}

async fn expired_keys_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let created = app
        .create_key(json!({"name": "a", "team": "t", "expires_at": expires}))
        .await;
    let key = created["key"].as_str().unwrap();
    assert_eq!(app.chat(key, hello("glm-4.7")).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let response = app.chat(key, hello("glm-4.7")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_of(response).await["code"], "api_key_expired");
    app.shutdown().await;
}

async fn model_allowlists_are_enforced_and_filter_the_model_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_key(json!({"name": "a", "team": "t", "models": ["gpt-4", "glm-4.5-*"]}))
        .await;
    let key = created["key"].as_str().unwrap();
    assert_eq!(
        app.chat(key, hello("gpt-4")).await.status(),
        200,
        "an allowed alias"
    );
    assert_eq!(
        app.chat(key, hello("glm-4.5-air")).await.status(),
        200,
        "an allowed prefix"
    );
    let response = app.chat(key, hello("glm-5")).await;
    assert_eq!(response.status(), 403);
    let error = error_of(response).await;
    assert_eq!(error["code"], "model_not_allowed");
    assert_eq!(error["param"], "model");

    let list: serde_json::Value = app
        .http
        .get(app.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"glm-4.5-air"), "{ids:?}");
    assert!(!ids.contains(&"glm-5"), "{ids:?}");
    let response = app
        .http
        .get(app.url("/v1/models/glm-5"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await["code"], "model_not_found");
    app.shutdown().await;
}

async fn the_database_holds_no_key_in_plain_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let secret = key.rsplit_once('-').unwrap().1.to_owned();
    let rows: Vec<String> = match &app.db {
        glm_gateway::store::Db::Postgres(pool) => {
            sqlx::query("SELECT row_to_json(k)::text AS r FROM api_keys k")
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get("r"))
                .collect()
        }
        glm_gateway::store::Db::Sqlite(pool) => sqlx::query(
            "SELECT id || name || team || secret_hash || coalesce(models, '') AS r FROM api_keys",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("r"))
        .collect(),
    };
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].contains(&secret) && !rows[0].contains(&key),
        "{}",
        rows[0]
    );
    let listed = app
        .http
        .get(app.url("/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains(&secret) && !listed.contains("secret_hash"),
        "{listed}"
    );
    app.shutdown().await;
}

async fn the_admin_api_needs_the_admin_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    for token in [None, Some("wrong-token"), Some(key.as_str())] {
        let mut request = app.http.get(app.url("/admin/keys"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(error_of(response).await["code"], "invalid_admin_token");
    }
    let response = app
        .http
        .post(app.url("/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "", "team": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["param"], "name");
    let response = app
        .http
        .delete(app.url("/admin/keys/nosuchkey"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.shutdown().await;
}

on_both_backends!(
    missing_wrong_and_malformed_keys_are_refused,
    revoked_keys_are_refused_at_once_and_across_processes,
    expired_keys_are_refused,
    model_allowlists_are_enforced_and_filter_the_model_list,
    the_database_holds_no_key_in_plain_text,
    the_admin_api_needs_the_admin_token,
);
