//! From request to row: the `track_usage` layer gives each authenticated request a
//! `UsageTicket`, which handlers take as an argument and tell what they learn (models, prompt,
//! the answer's `Tap`). The ticket writes the row exactly once, through `Ledger::record`, before
//! the client has the whole answer, so an answered request always has a row.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::time::Instant;

use super::tap::{floor_char_boundary, MAX_CONTENT_BYTES};
use super::{Journal, PriceTable, Prompt, Tap, TokenUsage, UsageEvent, UsageSource};
use crate::error::{ApiError, ErrorCode};
use crate::keys::ApiKey;
use crate::request_id::RequestId;

/// Where rows go: priced, then appended to the journal. `None` journal: the ledger is off.
pub struct Ledger {
    journal: Option<Arc<Journal>>,
    prices: PriceTable,
    store_content: bool,
    limiter: Option<Arc<crate::limits::Limiter>>,
}

impl Ledger {
    pub fn new(journal: Option<Arc<Journal>>, prices: PriceTable, store_content: bool) -> Self {
        Self {
            journal,
            prices,
            store_content,
            limiter: None,
        }
    }

    /// Settles each recorded request's limit reservation.
    pub fn with_limiter(mut self, limiter: Arc<crate::limits::Limiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Whether a new request may be served: false only under `on_journal_full = "refuse"`
    /// while `[usage] memory_rows` rows the journal could not take wait in memory. Cheap.
    pub fn accepting(&self) -> bool {
        self.journal
            .as_ref()
            .is_none_or(|journal| journal.accepting())
    }

    pub fn stores_content(&self) -> bool {
        self.store_content
    }

    fn record(&self, mut event: UsageEvent) {
        self.limiter
            .iter()
            .for_each(|limiter| limiter.settle(&event));
        let Some(journal) = &self.journal else { return };
        make_storable(&mut event);
        if let Some(model) = &event.upstream_model {
            event.cost = self.prices.cost(
                model,
                event.created_at,
                event.prompt_tokens,
                event.completion_tokens,
                event.image_count,
            );
        }
        journal.append(&event);
    }
}

/// Model names longer than this are cut in the row (a client may send anything).
const MAX_MODEL_CHARS: usize = 200;

/// Text from clients goes into the row, but Postgres refuses NUL characters in text, and one
/// refused row must not hold up the ledger: NULs are removed, model names kept short.
fn make_storable(event: &mut UsageEvent) {
    let texts = [
        &mut event.requested_model,
        &mut event.upstream_model,
        &mut event.error_code,
        &mut event.prompt_text,
        &mut event.completion_text,
    ];
    for text in texts.into_iter().flatten() {
        if text.contains('\0') {
            text.retain(|c| c != '\0');
        }
    }
    for text in [&mut event.requested_model, &mut event.upstream_model]
        .into_iter()
        .flatten()
    {
        if let Some((cut, _)) = text.char_indices().nth(MAX_MODEL_CHARS) {
            text.truncate(cut);
        }
    }
    for text in [&mut event.prompt_text, &mut event.completion_text]
        .into_iter()
        .flatten()
    {
        if text.len() > MAX_CONTENT_BYTES {
            text.truncate(floor_char_boundary(text, MAX_CONTENT_BYTES));
        }
    }
}

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
}

/// What handlers have told the ticket so far.
#[derive(Default)]
struct Noted {
    models: Option<(String, String)>,
    /// Set once the prompt is about to go upstream.
    prompt: Option<Prompt>,
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
        self.noted().models = Some((requested.to_owned(), upstream.to_owned()));
    }

    pub fn set_prompt(&self, prompt: Prompt) {
        self.noted().prompt = Some(prompt);
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
        self.clone()
    }

    /// Writes a stream's row; called before the stream's last frames reach the client.
    pub fn finish_stream(&self, end: StreamEnd) {
        let mut event = self.0.event(200, end.error_code, true);
        self.0.count_tokens(&mut event, &end.tap);
        event.client_disconnected = end.client_disconnected;
        self.0.record(event);
    }

    fn finish_response(&self, status: u16, error: Option<&ApiError>) {
        let code = error.map(|e| e.code.as_str().to_owned());
        let mut event = self.0.event(status, code, false);
        let answer = self.noted().answer.take();
        if let Some(tap) = answer {
            self.0.count_tokens(&mut event, &tap);
        }
        self.0.record(event);
    }

    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.0.noted()
    }
}

impl Pending {
    fn noted(&self) -> MutexGuard<'_, Noted> {
        self.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The upstream's counts when it gave them; otherwise, if any answer came, an estimate from
    /// the prompt and the answer's length, never a silent 0.
    fn count_tokens(&self, event: &mut UsageEvent, tap: &Tap) {
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
                    cached: 0,
                };
                (tokens, UsageSource::Estimated)
            }
            None => (TokenUsage::default(), UsageSource::None),
        };
        apply_tokens(event, tokens, source);
        event.image_count = tap.images();
        event.completion_text = tap.completion_text();
    }

    /// Writes the row unless it was written already.
    fn record(&self, event: UsageEvent) {
        if !self.recorded.swap(true, Ordering::AcqRel) {
            self.ledger.record(event);
        }
    }

    fn event(&self, status_code: u16, error_code: Option<String>, streamed: bool) -> UsageEvent {
        let noted = self.noted();
        UsageEvent {
            request_id: self.request_id.as_str().to_owned(),
            created_at: self.created_at,
            api_key_id: self.key.id.clone(),
            team: self.key.team.clone(),
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
                completion: 0,
                total: prompt,
                cached: 0,
            };
            apply_tokens(&mut event, tokens, UsageSource::Estimated);
        }
        self.record(event);
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
    }));
    request.extensions_mut().insert(ticket.clone());
    let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => ApiError::internal(&"a handler panicked").into_response(),
    };
    if !ticket.0.claimed.load(Ordering::Acquire) {
        ticket.finish_response(response.status().as_u16(), response.extensions().get());
    }
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

#[cfg(test)]
mod refusal_tests;

#[cfg(test)]
mod tests;
