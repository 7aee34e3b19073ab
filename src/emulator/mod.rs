//! A built-in emulator of Zhipu's GLM API, for `glm-gateway demo` and the tests. It is strict:
//! it rejects what real Zhipu rejects, so a gateway that forwards bad requests fails loudly.

mod answer;
mod auth;
mod catalogue;
mod chat;
mod directives;
mod embeddings;
mod errors;
mod images;
mod messages;
mod png;
mod respond;
mod responses;
mod schema;
mod state;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use state::Shared;

pub use directives::DIRECTIVES_HELP;
pub use embeddings::{embedding_tokens, embedding_vector};

/// Large enough for several base64 images (Zhipu allows 5 MB each).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub struct EmulatorConfig {
    /// Keys the emulator accepts, each "id.secret".
    pub api_keys: Vec<String>,
    /// Delay between streamed chunks when the request does not set one with `#slow`.
    pub chunk_delay: Duration,
}

/// A view on a running emulator's state; cheap to clone.
#[derive(Clone)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
}

impl EmulatorHandle {
    /// Every request received (bounded to the last 1000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// How many requests arrived in total, including any dropped from `requests()`.
    pub fn request_count(&self) -> usize {
        self.shared.request_count()
    }

    /// The PNG bytes the emulator serves for a generated image, given its URL (as the images
    /// answer has it) or its file name; `None` for an image it did not generate or forgot.
    pub fn image_bytes(&self, url_or_name: &str) -> Option<Vec<u8>> {
        let name = url_or_name.rsplit('/').next().unwrap_or(url_or_name);
        self.shared.image(name).map(|image| images::render(&image))
    }
}

/// One request as it arrived: `body` is the parsed JSON, a string if it was not JSON, or
/// `null` if it was empty.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// The emulator's routes: the API under `/api/paas/v4`, the Response API under `/api/v1`, and
/// the generated images under `/files/images/`, which need no key.
pub fn router(config: EmulatorConfig) -> (Router, EmulatorHandle) {
    let shared = Arc::new(Shared::new(&config.api_keys, config.chunk_delay));
    let chat = post(chat::chat_completions).fallback(not_found);
    let embeddings = post(embeddings::embeddings).fallback(not_found);
    let images = post(images::generations).fallback(not_found);
    let files = get(images::file).fallback(not_found);
    let router = Router::new()
        .route("/api/paas/v4/chat/completions", chat)
        .route("/api/paas/v4/embeddings", embeddings)
        .route("/api/paas/v4/images/generations", images)
        .route(
            "/api/v1/responses",
            post(responses::create).fallback(not_found),
        )
        .route(
            "/api/v1/responses/{id}",
            get(responses::retrieve)
                .delete(responses::delete)
                .fallback(not_found),
        )
        .route(
            "/api/v1/responses/{id}/input_items",
            get(responses::input_items).fallback(not_found),
        )
        .route("/files/images/{name}", files)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared.clone());
    (router, EmulatorHandle { shared })
}

/// Serves the emulator on `listener` in a spawned task; returns at once.
pub fn spawn(listener: tokio::net::TcpListener, config: EmulatorConfig) -> EmulatorHandle {
    let (app, handle) = router(config);
    #[expect(
        clippy::disallowed_methods,
        reason = "the emulator serves until the process ends; the gateway never waits for it"
    )]
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "GLM emulator stopped");
        }
    });
    handle
}

/// Records every request, routed or not, before anything can reject it.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let authorization = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    shared.record(RecordedRequest {
        path: parts.uri.path().to_owned(),
        authorization,
        body,
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn not_found(uri: axum::http::Uri) -> Response {
    errors::spring_not_found(uri.path())
}
