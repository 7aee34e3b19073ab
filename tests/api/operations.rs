//! Health, readiness, metrics, request ids and the admin API without a token.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{error_of, spawn_app, spawn_app_with, Backend, ADMIN_TOKEN};
use crate::on_both_backends;

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let health: Value = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let response = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("glm_gateway_requests_total"), "{metrics}");
    app.shutdown().await;
}

async fn every_response_has_its_own_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut seen = HashSet::new();
    for path in ["/healthz", "/v1/models", "/nope", "/healthz"] {
        let response = app
            .http
            .get(app.url(path))
            .header("x-request-id", "client-chosen")
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, "client-chosen");
        assert!(seen.insert(id));
    }
    app.shutdown().await;
}

async fn without_an_admin_token_the_admin_api_refuses_everyone(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.admin_token = None).await;
    let response = app
        .http
        .get(app.url("/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    error_of(response).await;
    app.shutdown().await;
}

on_both_backends!(
    health_readiness_and_metrics_answer,
    every_response_has_its_own_request_id,
    without_an_admin_token_the_admin_api_refuses_everyone,
);

async fn readiness_names_an_unreachable_upstream(backend: Backend) {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/api/paas/v4", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(backend, |config| config.zhipu.base_url = base_url).await;
    let key = app.key().await;
    let request =
        serde_json::json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}]});
    let response = app.chat(&key, request).await;
    assert_eq!(response.status(), 502);
    assert_eq!(error_of(response).await["code"], "upstream_unreachable");
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "degraded");
    assert!(
        ready["degraded"]["upstream"]
            .as_str()
            .unwrap()
            .contains("no answer"),
        "{ready}"
    );
    app.shutdown().await;
}

on_both_backends!(readiness_names_an_unreachable_upstream);

/// Runs `glm-gateway healthcheck` with `args` and `listen` as the setting; (exit code, stdout).
async fn healthcheck(args: &[&str], listen: &str) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_glm-gateway"))
        .arg("healthcheck")
        .args(args)
        .env("GLM_GATEWAY_LISTEN", listen)
        .env("GLM_GATEWAY_CONFIG", "/dev/null")
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_command_probes_a_running_gateway() {
    let app = spawn_app(Backend::Sqlite).await;
    let listen = app.base.trim_start_matches("http://").to_owned();

    let (code, out) = healthcheck(&[], &listen).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("healthy: ") && out.contains("/healthz"),
        "{out}"
    );

    let (code, out) = healthcheck(&["--ready"], &listen).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("/readyz"), "{out}");

    let missing = app.url("/no-such-path");
    let (code, out) = healthcheck(&["--url", &missing], &listen).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("unhealthy: ") && out.contains("404"),
        "{out}"
    );
    app.shutdown().await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, out) = healthcheck(&[], &format!("127.0.0.1:{port}")).await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("unhealthy: "), "{out}");
}
