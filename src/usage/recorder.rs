//! From request to row: the `track_usage` layer gives each authenticated request a
//! `UsageTicket`, which handlers take as an argument and tell what they learn (models, prompt,
//! the limits' reservation, the answer's `Tap`). The ticket writes the row exactly once,
//! before the client has the whole answer, so an answered request always has a row: it prices
//! the row, settles the reservation with that cost, and hands the row to the `Ledger`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use metrics::SharedString;
use tokio::time::Instant;

use super::{Prompt, Tap, TokenUsage, UsageEvent, UsageSource};
use crate::error::{ApiError, ErrorCode};
use crate::keys::ApiKey;
use crate::limits::Reservation;
use crate::request_id::RequestId;
use crate::telemetry::clock::RequestClock;
use crate::telemetry::labels::NONE;
use crate::telemetry::series::{self, RequestLabels};

/// How a relayed stream ended.
#[derive(Debug, Default)]
pub struct StreamEnd {
    pub tap: Tap,
    pub client_disconnected: bool,
    /// The code of the error event the stream ended with, if it did.
    pub error_code: Option<String>,
}

/// One request's pending row; cheap to clone. Handlers take it as an argument. The row is
/// written once: by `track_usage` when a plain response leaves, by the stream relay when a
/// stream ends (`claim_stream`), or, if neither gets to it (the client left before the
/// response, the gateway stopped mid-stream, a relay panicked), when the last clone drops.
#[derive(Clone)]
pub struct UsageTicket(Arc<Pending>);

struct Pending {
    ledger: Arc<Ledger>,
    request_id: RequestId,
    key: Arc<ApiKey>,
    endpoint: &'static str,
    created_at: DateTime<Utc>,
    started: Instant,
    noted: Mutex<Noted>,
    claimed: AtomicBool,
    recorded: AtomicBool,
    /// The request's clock, for its metrics (`None` outside `observe`).
    clock: Option<Arc<RequestClock>>,
    /// The metric labels of the model sent and of the GLM model, once known.
    model_labels: OnceLock<(SharedString, SharedString)>,
}

/// What handlers have told the ticket so far.
#[derive(Default)]
struct Noted {
    models: Option<(String, String)>,
    /// Set once the prompt is about to go upstream.
    prompt: Option<Prompt>,
    /// What the limits hold for the request until its row settles it.
    reservation: Option<Reservation>,
    answer: Option<Tap>,
    emulated: Option<String>,
}

impl UsageTicket {
    pub fn request_id(&self) -> &str {
        self.0.request_id.as_str()
    }

    /// Whether rows keep prompt and answer text (`[usage] store_content`).
    pub fn keeps_text(&self) -> bool {
        self.0.ledger.stores_content()
    }

    /// The model the client named and the GLM model it maps to.
    pub fn set_models(&self, requested: &str, upstream: &str) {
        let labels = &self.0.ledger.labels;
        let _ = self
            .0
            .model_labels
            .set((labels.alias(requested), labels.model(upstream)));
        self.noted().models = Some((requested.to_owned(), upstream.to_owned()));
    }

    /// The stream's first frame is about to reach the client: its time to first token.
    pub fn first_frame(&self) {
        if let Some(clock) = &self.0.clock {
            series::stream_first_frame(clock, self.0.alias_label());
        }
    }

    /// The labels `observe` counts the request with.
    fn labels(&self) -> RequestLabels {
        RequestLabels {
            alias: self.0.alias_label(),
            team: SharedString::from(Arc::clone(&self.0.key.team)),
        }
    }

    pub fn set_prompt(&self, prompt: Prompt) {
        self.noted().prompt = Some(prompt);
    }

    /// The reservation `admit` made; the row settles it.
    pub fn hold(&self, reservation: Option<Reservation>) {
        self.noted().reservation = reservation;
    }

    /// What was rewritten to keep a promise, and how the check went (`usage_events.emulated`).
    pub fn set_emulated(&self, emulated: impl Into<String>) {
        self.noted().emulated = Some(emulated.into());
    }

    /// A plain answer's tap; its row is written as the response leaves.
    pub fn answered(&self, tap: Tap) {
        self.noted().answer = Some(tap);
    }

    /// Takes the row over from `track_usage` for a stream, whose row is written at its end.
    pub fn claim_stream(&self) -> Self {
        self.0.claimed.store(true, Ordering::Release);
        if let Some(clock) = &self.0.clock {
            clock.mark_stream();
        }
        self.clone()
    }

    /// Writes a stream's row; called before the stream's last frames reach the client.
    pub fn finish_stream(&self, end: StreamEnd) {
        let mut event = self.0.event(200, end.error_code, true);
        let reasoning = self.0.count_tokens(&mut event, &end.tap);
        event.client_disconnected = end.client_disconnected;
        self.0.record(event, reasoning);
    }

    fn finish_response(&self, status: u16, error: Option<&ApiError>) {
        let code = error.map(|e| e.code.as_str().to_owned());
        let mut event = self.0.event(status, code, false);
        let answer = self.noted().answer.take();
        let reasoning = answer.map_or(0, |tap| self.0.count_tokens(&mut event, &tap));
        self.0.record(event, reasoning);
    }

    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.0.noted()
    }
}

impl Pending {
    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn alias_label(&self) -> SharedString {
        self.model_labels
            .get()
            .map_or(NONE, |(alias, _)| alias.clone())
    }

    /// The upstream's counts when it gave them; otherwise, if any answer came, an estimate from
    /// the prompt and the answer's length, never a silent 0. Returns the reasoning tokens,
    /// which the row does not keep.
    fn count_tokens(&self, event: &mut UsageEvent, tap: &Tap) -> i64 {
        let (tokens, source) = match tap.tokens() {
            Some(tokens) => (tokens, UsageSource::Upstream),
            None if tap.answer_chars() > 0 => {
                let prompt =
                    TokenUsage::estimate(self.noted().prompt.as_ref().map_or(0, |p| p.chars));
                let completion = TokenUsage::estimate(tap.answer_chars());
                let tokens = TokenUsage {
                    prompt,
                    completion,
                    total: prompt + completion,
                    ..TokenUsage::default()
                };
                (tokens, UsageSource::Estimated)
            }
            None => (TokenUsage::default(), UsageSource::None),
        };
        apply_tokens(event, tokens, source);
        event.image_count = tap.images();
        event.completion_text = tap.completion_text();
        tokens.reasoning
    }

    /// Writes the row unless it was written already: priced, its reservation settled at that
    /// cost, with its access line and metrics.
    fn record(&self, mut event: UsageEvent, reasoning: i64) {
        if self.recorded.swap(true, Ordering::AcqRel) {
            return;
        }
        event.cost = self.ledger.price(&event);
        if let Some(reservation) = self.noted().reservation.take() {
            reservation.settle(event.total_tokens, event.cost);
        }
        self.report(&event, reasoning);
        self.ledger.record(event);
    }

    fn event(&self, status_code: u16, error_code: Option<String>, streamed: bool) -> UsageEvent {
        let noted = self.noted();
        UsageEvent {
            request_id: self.request_id.as_str().to_owned(),
            created_at: self.created_at,
            api_key_id: self.key.id.clone(),
            team: self.key.team.to_string(),
            endpoint: self.endpoint.to_owned(),
            requested_model: noted.models.as_ref().map(|m| m.0.clone()),
            upstream_model: noted.models.as_ref().map(|m| m.1.clone()),
            streamed,
            status_code,
            error_code,
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            cached_tokens: 0,
            image_count: 0,
            latency_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            usage_source: UsageSource::None,
            client_disconnected: false,
            cost: None,
            emulated: noted.emulated.clone(),
            prompt_text: noted.prompt.as_ref().and_then(|p| p.text.clone()),
            completion_text: None,
        }
    }
}

impl Drop for Pending {
    /// The request ended without its row: a panic (500), the client left before the response
    /// began (499, as web servers log it), or a stream was cut off by the gateway stopping. If
    /// the prompt had gone upstream, its tokens are estimated: the upstream may bill for it.
    fn drop(&mut self) {
        if self.recorded.load(Ordering::Acquire) {
            return;
        }
        let streamed = self.claimed.load(Ordering::Acquire);
        let code = if std::thread::panicking() {
            ErrorCode::InternalError
        } else if streamed {
            ErrorCode::StreamInterrupted
        } else {
            ErrorCode::ClientClosedRequest
        };
        let status = code.status().as_u16();
        let mut event = self.event(status, Some(code.as_str().to_owned()), streamed);
        event.client_disconnected = status == 499;
        let prompt_chars = self.noted().prompt.as_ref().map(|p| p.chars);
        if let Some(chars) = prompt_chars {
            let prompt = TokenUsage::estimate(chars);
            let tokens = TokenUsage {
                prompt,
                total: prompt,
                ..TokenUsage::default()
            };
            apply_tokens(&mut event, tokens, UsageSource::Estimated);
        }
        self.record(event, 0);
    }
}

fn apply_tokens(event: &mut UsageEvent, tokens: TokenUsage, source: UsageSource) {
    event.prompt_tokens = tokens.prompt;
    event.completion_tokens = tokens.completion;
    event.total_tokens = tokens.total;
    event.cached_tokens = tokens.cached;
    event.usage_source = source;
}

impl<S: Send + Sync> FromRequestParts<S> for UsageTicket {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| ApiError::internal(&"a /v1 route is missing the track_usage layer"))
    }
}

/// The ledger's name for a `/v1` path (`usage_events.endpoint`).
fn endpoint_of(path: &str) -> &'static str {
    let path = path.strip_prefix("/v1/").unwrap_or(path);
    match path.split('/').next().unwrap_or_default() {
        "chat" => "chat",
        "responses" => "responses",
        "embeddings" => "embeddings",
        "images" => "images",
        "models" => "models",
        _ => "other",
    }
}

/// The layer inside `require_api_key`: every request with a valid key leaves exactly one row,
/// a handler's panic included (recorded as the 500 the client gets).
pub async fn track_usage(
    State(ledger): State<Arc<Ledger>>,
    mut request: Request,
    next: Next,
) -> Response {
    let (Some(key), Some(request_id)) = (
        request.extensions().get::<Arc<ApiKey>>().cloned(),
        request.extensions().get::<RequestId>().cloned(),
    ) else {
        return next.run(request).await;
    };
    if !ledger.accepting() {
        return ledger_unavailable().into_response();
    }
    let ticket = UsageTicket(Arc::new(Pending {
        ledger,
        request_id,
        key,
        endpoint: endpoint_of(request.uri().path()),
        created_at: Utc::now(),
        started: Instant::now(),
        noted: Mutex::default(),
        claimed: AtomicBool::new(false),
        recorded: AtomicBool::new(false),
        clock: RequestClock::current(),
        model_labels: OnceLock::new(),
    }));
    request.extensions_mut().insert(ticket.clone());
    let mut response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => ApiError::internal(&"a handler panicked").into_response(),
    };
    if !ticket.0.claimed.load(Ordering::Acquire) {
        ticket.finish_response(response.status().as_u16(), response.extensions().get());
    }
    response.extensions_mut().insert(ticket.labels());
    response
}

/// Seconds a refused client is told to wait: the writer usually frees memory within that.
const LEDGER_RETRY_SECS: u64 = 5;

/// The answer while the ledger can take no row: the request is refused, never served unrecorded.
fn ledger_unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::LedgerUnavailable,
        "The gateway cannot record usage right now (its usage journal cannot be written and \
         its memory for rows is full); retry later.",
    )
    .retry_after(LEDGER_RETRY_SECS)
}

mod ledger;
mod report;

pub use ledger::Ledger;

#[cfg(test)]
mod refusal_tests;

#[cfg(test)]
mod tests;
