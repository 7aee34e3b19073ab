//! Operations endpoints: liveness, readiness (and what is degraded), Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;
use crate::upstream::KeyState;
use crate::usage::Journal;

/// Key reloads older than this mean the database is not answering.
const STALE_KEYS_MS: i64 = 5_000;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 whenever the gateway can serve, with `degraded` naming what is not well; 503 only
/// before the keys were first loaded or once shutdown has begun.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting_down" })),
        )
            .into_response();
    }
    let Some(staleness) = state.keys.staleness_ms() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting" })),
        )
            .into_response();
    };
    let mut degraded = serde_json::Map::new();
    if staleness > STALE_KEYS_MS {
        degraded.insert(
            "database".into(),
            json!(format!(
                "unreachable; keys served from the cache loaded {}s ago",
                staleness / 1000
            )),
        );
    }
    if let Some(journal) = state.ledger.journal() {
        ledger_trouble(journal, &mut degraded);
    }
    if state.config.zhipu.api_keys.is_empty() {
        degraded.insert("upstream".into(), json!("no Zhipu API key configured"));
    } else if let Some(trouble) = state.zhipu.trouble() {
        degraded.insert("upstream".into(), json!(trouble));
    }
    let status = if degraded.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Json(json!({
        "status": status,
        "database": state.db.backend(),
        "degraded": degraded,
        "upstream_keys": upstream_keys(&state),
    }))
    .into_response()
}

/// Each upstream key by its id (never its secret): `ok`, `cooling` (rate-limited) or `out`
/// (rejected, or without balance), and until when (RFC 3339; `null` when `ok`).
fn upstream_keys(state: &AppState) -> Vec<serde_json::Value> {
    state
        .zhipu
        .key_statuses()
        .into_iter()
        .map(|key| {
            let until = (key.state != KeyState::Ok)
                .then(|| chrono::DateTime::from_timestamp_millis(key.until_ms))
                .flatten()
                .map(|t| t.to_rfc3339());
            json!({ "id": key.id, "state": key.state, "until": until })
        })
        .collect()
}

/// What `/readyz` says about the ledger: database writes failing (`ledger`), the journal
/// unwritable or rows held only in memory (`journal`), rows of another database set aside at
/// start (`journal_foreign`).
fn ledger_trouble(journal: &Journal, degraded: &mut serde_json::Map<String, serde_json::Value>) {
    let health = journal.health();
    if let Some(since) = health.failing_since {
        degraded.insert(
            "ledger".into(),
            json!(format!(
                "{} usage rows waiting in the journal; database writes failing since {}",
                health.backlog,
                since.to_rfc3339()
            )),
        );
    }
    let held = format!(
        "{} usage rows held only in memory (lost on a crash), {} lost since start",
        health.rows_in_memory, health.rows_lost
    );
    if let (Some(since), Some(error)) = (health.journal_failing_since, &health.journal_error) {
        degraded.insert(
            "journal".into(),
            json!(format!(
                "cannot write the usage journal in {} since {} ({error}); {held}",
                journal.dir().display(),
                since.to_rfc3339()
            )),
        );
    } else if health.rows_in_memory > 0 {
        degraded.insert("journal".into(), json!(held));
    }
    if let Some(aside) = health.set_aside {
        degraded.insert(
            "journal_foreign".into(),
            json!(format!(
                "{} usage rows journaled for another database (id {}) were set aside in {}, not inserted",
                aside.rows,
                aside.database_id,
                aside.folder.display()
            )),
        );
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    for key in state.zhipu.key_statuses() {
        let available = if key.state == KeyState::Ok { 1.0 } else { 0.0 };
        metrics::gauge!("glm_gateway_upstream_key_available", "key_id" => key.id).set(available);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
