use axum::body::Body;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;

use super::*;
use crate::catalogue::PriceBook;
use crate::keys::hash_secret;
use crate::store::KeyRecord;
use crate::usage::Journal;

/// A request to `path` as `require_api_key` and `observe` leave it: with a key and an id.
pub(super) fn keyed_request(path: &str) -> Request {
    let record = KeyRecord::unlimited("k1", "n", "t", hash_secret("s"));
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = path.parse().unwrap();
    request
        .extensions_mut()
        .insert(Arc::new(ApiKey::from_record(&record).unwrap()));
    request.extensions_mut().insert(RequestId::generate());
    request
}

/// The rows a journal folder holds, read back from its segment files.
fn journal_rows(dir: &std::path::Path) -> Vec<UsageEvent> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        rows.extend(
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok()),
        );
    }
    rows
}

#[tokio::test]
async fn a_panicking_handler_is_recorded_as_the_500_the_client_gets() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(dir.path()).unwrap());
    let ledger = Arc::new(Ledger::new(Some(journal), PriceBook::builtin(), false));
    async fn boom(ticket: UsageTicket) -> &'static str {
        ticket.set_models("gpt-4o", "glm-4.6v");
        panic!("a bug")
    }
    let app = Router::new()
        .route("/v1/chat/completions", get(boom))
        .route_layer(from_fn_with_state(ledger, track_usage));
    let response = app
        .oneshot(keyed_request("/v1/chat/completions"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let rows = journal_rows(dir.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status_code, rows[0].error_code.as_deref()),
        (500, Some("internal_error"))
    );
    assert_eq!(rows[0].endpoint, "chat");
}

#[test]
fn endpoints_have_short_names() {
    assert_eq!(endpoint_of("/v1/chat/completions"), "chat");
    assert_eq!(endpoint_of("/v1/images/generations"), "images");
    assert_eq!(endpoint_of("/v1/responses/resp_1/input_items"), "responses");
    assert_eq!(endpoint_of("/v1/models/gpt-4o"), "models");
    assert_eq!(endpoint_of("/v1/embeddings"), "embeddings");
}
