//! `track_usage` under `on_journal_full = "refuse"`: past the memory bound a request is turned
//! away before any handler runs, OpenAI-shaped, and leaves no row.

use axum::http::StatusCode;
use std::sync::atomic::AtomicUsize;

use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;

use super::*;
use crate::catalogue::PriceBook;
use crate::config::OnJournalFull;
use crate::usage::journal::tests::{bounded, event, unwritable};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

async fn handler() -> &'static str {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    "served"
}

fn request() -> Request {
    super::tests::keyed_request("/v1/models")
}

#[tokio::test]
async fn past_the_memory_bound_requests_are_refused_before_the_handler() {
    let (_disk, journal) = unwritable(&bounded(1, OnJournalFull::Refuse));
    let journal = Arc::new(journal);
    let ledger = Arc::new(Ledger::new(
        Some(Arc::clone(&journal)),
        PriceBook::builtin(),
        false,
    ));
    let app = Router::new()
        .route("/v1/models", get(handler))
        .route_layer(from_fn_with_state(Arc::clone(&ledger), track_usage));
    assert!(ledger.accepting());
    journal.append(&event("held"));
    assert!(!ledger.accepting());

    let response = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "ledger_unavailable", "{body}");
    assert_eq!(HANDLED.load(Ordering::SeqCst), 0, "no handler ran");
    assert_eq!(journal.health().rows_in_memory, 1, "and no row was made");

    let taken = journal.take_overflow(10);
    journal.record_commit(1, 1, taken.len() as u64);
    let response = app.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(HANDLED.load(Ordering::SeqCst), 1);
}
