//! From request to row: the `track_usage` layer gives each authenticated request a
//! `UsageTicket`; handlers note the models and tokens on it or on the response; the row goes to
//! the journal before the client has the whole answer, so an answered request always has a row.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::time::Instant;

use super::{Journal, PriceTable, UsageEvent, UsageSource};
use crate::error::ApiError;
use crate::keys::ApiKey;
use crate::relay::StreamOutcome;
use crate::routes::RequestId;

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
/// Stored prompt and completion text is cut at this many bytes, so that a prompt full of
/// base64 images cannot make a row (and a batch of them) huge.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

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
            let cut = (0..=MAX_CONTENT_BYTES)
                .rev()
                .find(|at| text.is_char_boundary(*at))
                .unwrap_or(0);
            text.truncate(cut);
        }
    }
}

/// Token counts as the upstream reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt: i64,
    pub completion: i64,
    pub total: i64,
    pub cached: i64,
}

impl TokenUsage {
    /// Reads an OpenAI/Zhipu `usage` object; `None` when it has no token counts.
    pub fn from_value(usage: &Value) -> Option<Self> {
        let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_i64);
        let prompt = count("/prompt_tokens");
        let completion = count("/completion_tokens");
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        Some(Self {
            prompt,
            completion,
            total: count("/total_tokens").unwrap_or(prompt + completion),
            cached: count("/prompt_tokens_details/cached_tokens").unwrap_or(0),
        })
    }

    /// A rough count for text the upstream gave no usage for: about three characters a token
    /// (English runs near four, Chinese near one or two), never zero for non-empty text.
    pub fn estimate(chars: usize) -> i64 {
        i64::try_from(chars.div_ceil(3)).unwrap_or(i64::MAX)
    }
}

/// What a successful non-stream handler leaves on its response for the row.
#[derive(Debug, Clone, Default)]
pub struct AnswerUsage {
    pub tokens: Option<TokenUsage>,
    /// Characters of the answer, for an estimate when the upstream reported no usage.
    pub completion_chars: usize,
    pub images: i64,
    pub completion_text: Option<String>,
}

/// One request's pending row. Handlers fill in what they learn; the row is written once, by
/// `track_usage` when the response leaves, or by a stream relay when the stream ends, or, if
/// neither gets to it (the client left before the response, the gateway stopped mid-stream),
/// when the ticket is dropped.
pub struct UsageTicket {
    ledger: Arc<Ledger>,
    request_id: Arc<str>,
    key: Arc<ApiKey>,
    endpoint: String,
    created_at: DateTime<Utc>,
    started: Instant,
    models: OnceLock<(String, String)>,
    prompt: OnceLock<(usize, Option<String>)>,
    claimed: AtomicBool,
    recorded: AtomicBool,
}

impl UsageTicket {
    /// The model the client named and the GLM model it maps to.
    pub fn set_models(&self, requested: &str, upstream: &str) {
        let _ = self.models.set((requested.to_owned(), upstream.to_owned()));
    }

    /// The prompt's size in characters (for estimates) and, when content is stored, its text.
    pub fn set_prompt(&self, chars: usize, text: impl FnOnce() -> String) {
        let text = self.ledger.stores_content().then(text);
        let _ = self.prompt.set((chars, text));
    }

    /// Takes the row over from `track_usage`: for streams, whose row is written at their end.
    pub fn claim(self: &Arc<Self>) -> Arc<Self> {
        self.claimed.store(true, Ordering::Release);
        Arc::clone(self)
    }

    /// Writes a stream's row; called before the stream's last frames reach the client.
    pub fn finish_stream(&self, outcome: &StreamOutcome) {
        let reported = outcome.usage.as_ref().and_then(TokenUsage::from_value);
        let mut event = self.event(200, outcome.error_code.clone(), true);
        self.count_tokens(&mut event, reported, outcome.streamed_chars);
        event.client_disconnected = outcome.client_disconnected;
        event.completion_text.clone_from(&outcome.completion_text);
        self.record(event);
    }

    fn finish_response(&self, response: &Response) {
        let error_code = response
            .extensions()
            .get::<ApiError>()
            .and_then(|e| e.code.as_deref().map(String::from));
        let mut event = self.event(response.status().as_u16(), error_code, false);
        if let Some(answer) = response.extensions().get::<AnswerUsage>() {
            self.count_tokens(&mut event, answer.tokens, answer.completion_chars);
            event.image_count = answer.images;
            event.completion_text.clone_from(&answer.completion_text);
        }
        self.record(event);
    }

    /// The upstream's counts when it gave them; otherwise, if any answer came, an estimate from
    /// the prompt and the answer's length, never a silent 0.
    fn count_tokens(
        &self,
        event: &mut UsageEvent,
        reported: Option<TokenUsage>,
        answer_chars: usize,
    ) {
        let (tokens, source) = match reported {
            Some(tokens) => (tokens, UsageSource::Upstream),
            None if answer_chars > 0 => (self.estimate(answer_chars), UsageSource::Estimated),
            None => (TokenUsage::default(), UsageSource::None),
        };
        apply_tokens(event, tokens, source);
    }

    fn estimate(&self, answer_chars: usize) -> TokenUsage {
        let prompt = TokenUsage::estimate(self.prompt.get().map_or(0, |p| p.0));
        let completion = TokenUsage::estimate(answer_chars);
        TokenUsage {
            prompt,
            completion,
            total: prompt + completion,
            cached: 0,
        }
    }

    /// Writes the row unless it was written already.
    fn record(&self, event: UsageEvent) {
        if !self.recorded.swap(true, Ordering::AcqRel) {
            self.ledger.record(event);
        }
    }

    fn event(&self, status_code: u16, error_code: Option<String>, streamed: bool) -> UsageEvent {
        let models = self.models.get();
        UsageEvent {
            request_id: self.request_id.to_string(),
            created_at: self.created_at,
            api_key_id: self.key.id.clone(),
            team: self.key.team.clone(),
            endpoint: self.endpoint.clone(),
            requested_model: models.map(|m| m.0.clone()),
            upstream_model: models.map(|m| m.1.clone()),
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
            prompt_text: self.prompt.get().and_then(|p| p.1.clone()),
            completion_text: None,
        }
    }
}

impl Drop for UsageTicket {
    /// The request ended without its row: the client left before the response began (499,
    /// as web servers log it), or a stream was cut off by the gateway stopping. If the prompt
    /// had gone upstream, its tokens are estimated: the upstream may bill for it.
    fn drop(&mut self) {
        if self.recorded.load(Ordering::Acquire) {
            return;
        }
        let streamed = self.claimed.load(Ordering::Acquire);
        let (status, code) = if streamed {
            (200, "stream_interrupted")
        } else {
            (499, "client_closed_request")
        };
        let mut event = self.event(status, Some(code.to_owned()), streamed);
        event.client_disconnected = !streamed;
        if let Some((chars, _)) = self.prompt.get() {
            let prompt = TokenUsage::estimate(*chars);
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

/// The layer inside `require_api_key`: every request with a valid key leaves exactly one row.
pub async fn track_usage(
    State(ledger): State<Arc<Ledger>>,
    mut request: Request,
    next: Next,
) -> Response {
    let (Some(key), Some(RequestId(request_id))) = (
        request.extensions().get::<Arc<ApiKey>>().cloned(),
        request.extensions().get::<RequestId>().cloned(),
    ) else {
        return next.run(request).await;
    };
    let ticket = Arc::new(UsageTicket {
        ledger,
        request_id,
        key,
        endpoint: request.uri().path().to_owned(),
        created_at: Utc::now(),
        started: Instant::now(),
        models: OnceLock::new(),
        prompt: OnceLock::new(),
        claimed: AtomicBool::new(false),
        recorded: AtomicBool::new(false),
    });
    request.extensions_mut().insert(Arc::clone(&ticket));
    let response = next.run(request).await;
    if !ticket.claimed.load(Ordering::Acquire) {
        ticket.finish_response(&response);
    }
    response
}
