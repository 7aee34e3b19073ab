//! The HTTP surface: which path goes to which handler, and the layers around them. Handlers
//! stay thin; translation lives in `openai`, transport in `upstream`.
//!
//! Layers, outermost first (beneath them all, `server` bounds connections: their count, header
//! and idle timeouts; and it gives hyper's own 400/414/431 answers JSON bodies):
//! 1. `observe`: assigns the request id (`x-request-id` on every response), serves the request
//!    in a span and a clock of its own, and counts and times it (`telemetry::series`).
//! 2. `CatchPanicLayer`: a panic becomes an OpenAI-shaped 500, never a dropped connection.
//! 3. `admit`: past `server.max_in_flight` requests, or when the body's declared length does
//!    not fit in what is left of `server.max_buffered_body_bytes`, 503 with `retry-after: 1`;
//!    a body not read whole within `server.body_timeout` gets 408 from `OpenAiJson`.
//! 4. `DefaultBodyLimit`: bodies past `server.max_body_bytes` get 413 from `OpenAiJson`.
//! 5. `/v1/*` routes: `require_api_key` (the key goes on as an extension), then `track_usage`
//!    (a `UsageTicket` goes on; exactly one ledger row leaves per request), around the handlers
//!    and the 405 for a wrong method too (so it needs a key and leaves a row); `/admin/*`
//!    routes: `require_admin`. Unknown paths and methods answer OpenAI-shaped 404 / 405; path
//!    segments that do not decode answer 400 (`OpenAiPath`).
//! 6. In each model handler, `authorize`: the key's model allowlist, then its and its team's
//!    limits and budgets (a refusal is a 429 that still leaves its row).

use std::any::Any;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode};
use crate::keys::require_api_key;
use crate::request_id::RequestId;
use crate::server::admission::{admit, Admission};
use crate::state::AppState;
use crate::telemetry::clock::RequestClock;
use crate::telemetry::labels::route_label;
use crate::telemetry::series::{self, RequestLabels};
use crate::usage::track_usage;

pub mod admin;
mod authorize;
mod chat;
mod embeddings;
mod health;
mod images;
pub mod json;
mod models;
mod path;
mod promise;
mod responses;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/images/generations", post(images::generations))
        .route("/v1/images/edits", post(images::unsupported))
        .route("/v1/images/variations", post(images::unsupported))
        .route("/v1/models", get(models::list_models))
        .route("/v1/models/{id}", get(models::retrieve_model))
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(responses::input_items),
        )
        .route("/v1/responses/{id}/cancel", post(responses::cancel))
        // Set before the layers, so that they wrap it (and the outer default leaves it be).
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(Arc::clone(&state.ledger), track_usage))
        .layer(from_fn_with_state(Arc::clone(&state.keys), require_api_key));
    let admin = Router::new()
        .route("/admin/keys", post(admin::create).get(admin::list))
        .route(
            "/admin/keys/{id}",
            delete(admin::revoke).patch(admin::update),
        )
        .route("/admin/teams", get(admin::list_teams))
        .route("/admin/teams/{team}", put(admin::set_team))
        .route("/admin/usage", get(admin::usage))
        .route_layer(from_fn_with_state(state.clone(), admin::require_admin));
    Router::new()
        .merge(v1)
        .merge(admin)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        .layer(from_fn_with_state(
            Admission::new(&state.config.server),
            admit,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(observe))
        .with_state(state)
}

/// Gives each request a fresh id (a client's own `x-request-id` is not trusted to be unique),
/// serves it inside a `request` span carrying that id (so every line logged meanwhile has it)
/// and a `RequestClock` (so the upstream client can time its calls), then counts it by route,
/// status and, from the usage layer, alias and team (`telemetry::series`).
async fn observe(mut request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let clock = RequestClock::new(route_label(template));
    let span = tracing::info_span!("request", request_id = %id.as_str());
    request.extensions_mut().insert(id.clone());
    let mut left = ClientLeft(Some(&clock));
    let mut response = clock.scope(next.run(request)).instrument(span).await;
    left.0 = None;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert("x-request-id", value);
    }
    let labels = response.extensions().get::<RequestLabels>();
    series::request_answered(&clock, response.status().as_u16(), labels);
    response
}

/// Counts a request whose client left before its response (dropped with `observe`'s future)
/// as a 499, as its ledger row has it.
struct ClientLeft<'a>(Option<&'a RequestClock>);

impl Drop for ClientLeft<'_> {
    fn drop(&mut self) {
        if let Some(clock) = self.0 {
            series::request_answered(clock, 499, None);
        }
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownUrl,
        format!("Unknown request URL: {method} {}.", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("Method {method} is not allowed for {}.", uri.path()),
    )
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal(&"a handler panicked").into_response()
}
