//! The client for Zhipu's API: signs each call, applies the connect / first-byte / total
//! timeouts (per GLM model if configured), tries a call that failed before its answer began
//! again on another key (`retry` says which failures qualify), then on the fallback models, and
//! turns any non-200 answer into an OpenAI-shaped error (`zhipu_error` owns that mapping). It
//! knows nothing of OpenAI's request shapes; `openai` translates before and after.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::config::{derive_responses_base, ImagesConfig, Timeouts, ZhipuConfig};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::telemetry::clock::UpstreamTimer;
use endpoint::Endpoints;

/// How an upstream surface's error answers become OpenAI errors: (HTTP status, body).
pub type ErrorMap = fn(u16, &[u8]) -> ApiError;

mod credential;
mod endpoint;
mod images;
mod pool;
mod responses_error;
mod retry;
pub mod zhipu_error;

pub use credential::{sign, Credential};
pub use images::ImageFetcher;
pub use pool::{verdict, KeyPool, KeyState, KeyStatus, KeyVerdict};
pub use responses_error::{in_band_error, map_responses_error};
use retry::{backoff, body_model, classify, retry_body, Retry};
pub use zhipu_error::{map_zhipu_error, map_zhipu_value};

/// Error bodies are read up to this size; the rest is ignored.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A plain answer larger than this is refused rather than held in memory.
const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;

pub struct ZhipuClient {
    /// One client per connect timeout in use (reqwest sets it per client, not per call): the
    /// section's first, then those of `[zhipu.timeouts]` tables that differ.
    clients: Vec<(Duration, reqwest::Client)>,
    base: Endpoints,
    /// Zhipu's Response API (`/api/v1`), signed with the same credentials.
    responses_base: Endpoints,
    keys: KeyPool,
    timeouts: Timeouts,
    /// Attempts per model, the first included.
    max_attempts: u32,
    fallbacks: BTreeMap<String, Vec<String>>,
    /// The whole `[zhipu]` section, for its per-model timeouts.
    config: ZhipuConfig,
    health: UpstreamHealth,
    /// Downloads generated images for `b64_json` answers.
    pub images: ImageFetcher,
}

/// Whether the upstream answered lately: set by every call, read by `/readyz`.
#[derive(Default)]
struct UpstreamHealth {
    /// Unix ms of the last failure to get any answer, and of the last answer (any status).
    last_failure_ms: AtomicI64,
    last_answer_ms: AtomicI64,
    last_failure: std::sync::Mutex<&'static str>,
}

impl UpstreamHealth {
    fn failed(&self, what: &'static str) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = what;
        self.last_failure_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn answered(&self) {
        self.last_answer_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

/// A 200 answer whose body has yet to be read, with the instant the whole exchange must end by.
pub struct UpstreamResponse {
    pub response: reqwest::Response,
    pub deadline: Instant,
}

impl ZhipuClient {
    pub fn new(config: &ZhipuConfig, images: &ImagesConfig) -> Result<Self, reqwest::Error> {
        let http = http_client(config.connect_timeout)?;
        let mut clients = vec![(config.connect_timeout, http.clone())];
        for model in &config.model_timeouts {
            let connect = model.timeouts.connect;
            if clients.iter().all(|(timeout, _)| *timeout != connect) {
                clients.push((connect, http_client(connect)?));
            }
        }
        Ok(Self {
            images: ImageFetcher::new(http, &config.base_url, images),
            clients,
            base: Endpoints::new(config.base_url.clone()),
            responses_base: Endpoints::new(
                config
                    .responses_base_url
                    .clone()
                    .unwrap_or_else(|| derive_responses_base(&config.base_url)),
            ),
            keys: KeyPool::new(
                config
                    .api_keys
                    .iter()
                    .map(|key| Credential::new(key, config.auth))
                    .collect(),
            ),
            timeouts: config.default_timeouts(),
            max_attempts: config.max_attempts.max(1),
            fallbacks: config.fallbacks.clone(),
            config: config.clone(),
            health: UpstreamHealth::default(),
        })
    }

    /// Every upstream key's id and state, for `/readyz` and `/metrics`.
    pub fn key_statuses(&self) -> Vec<KeyStatus> {
        self.keys.statuses(chrono::Utc::now().timestamp_millis())
    }

    /// The timeouts for calls with GLM model `model` (`None`: not known).
    fn timeouts_for(&self, model: Option<&str>) -> Timeouts {
        match model {
            Some(model) if !self.config.model_timeouts.is_empty() => {
                self.config.timeouts_for(model)
            }
            _ => self.timeouts,
        }
    }

    /// The HTTP client whose connect timeout is `connect`.
    fn client(&self, connect: Duration) -> &reqwest::Client {
        let found = self.clients.iter().find(|(timeout, _)| *timeout == connect);
        &found.unwrap_or(&self.clients[0]).1
    }

    /// POSTs `body` (JSON) to `path` under the base URL and returns the response once its
    /// status is 200; any other status becomes the mapped OpenAI error.
    ///
    /// For a stream the headers come at once, so the first-byte limit bounds the wait for them
    /// and for the first bytes; a plain answer's headers come only with the whole answer, so
    /// only the total limit does. See [`Self::send`] for retries.
    pub async fn post(
        &self,
        path: &'static str,
        body: Vec<u8>,
        stream: bool,
    ) -> ApiResult<UpstreamResponse> {
        let url = self.base.url(path)?;
        self.send(
            reqwest::Method::POST,
            url,
            Some(body),
            stream,
            map_zhipu_error,
        )
        .await
    }

    /// A call to Zhipu's Response API: `path` (with any query) under its base; its string error
    /// codes and the HTTP-200 `success:false` auth failure map to OpenAI errors.
    pub async fn responses(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        stream: bool,
    ) -> ApiResult<UpstreamResponse> {
        let url = self.responses_base.parse(path)?;
        self.send(method, url, body, stream, map_responses_error)
            .await
    }

    /// Calls the upstream until an attempt answers 200 (returned at once: nothing is retried
    /// after that) or fails in a way not worth retrying. A failure before the answer began (no
    /// connection, 429 with a rate or balance code, 401, 5xx, a stream's first byte late) is
    /// tried again, after a short backoff, on another usable key (the same one only after a
    /// connection failure or a 5xx, and only when no other is usable), up to `max_attempts`;
    /// then on each fallback model of the body's `model` in turn. Every retry carries a new
    /// `request_id`. All attempts share the deadline of the model asked for. Timed for the
    /// request's metrics: a plain call until its answer's headers (its body is timed as it is
    /// read), a stream until its first bytes.
    async fn send(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<Vec<u8>>,
        stream: bool,
        errors: ErrorMap,
    ) -> ApiResult<UpstreamResponse> {
        let timer = UpstreamTimer::start();
        if self.keys.is_empty() {
            return Err(ApiError::new(
                ErrorCode::UpstreamNotConfigured,
                "The gateway has no Zhipu API key configured.",
            ));
        }
        let body = body.map(Bytes::from);
        let per_model = !self.fallbacks.is_empty() || !self.config.model_timeouts.is_empty();
        let model = body.as_deref().filter(|_| per_model).and_then(body_model);
        let fallbacks = model
            .as_ref()
            .and_then(|model| self.fallbacks.get(model))
            .map_or(&[][..], Vec::as_slice);
        let deadline = Instant::now() + self.timeouts_for(model.as_deref()).total;
        let mut last_error: Option<(ApiError, Retry)> = None;
        let mut retries = 0;
        // `None`: the model as sent.
        let models = std::iter::once(None).chain(fallbacks.iter().map(|m| Some(m.as_str())));
        for fallback in models {
            let timeouts = self.timeouts_for(fallback.or(model.as_deref()));
            let mut tried = Vec::new();
            let mut reason: Option<Retry> = None;
            for _ in 0..self.max_attempts {
                let now_ms = chrono::Utc::now().timestamp_millis();
                let key = match reason {
                    // A model's first attempt: the next key in turn, or the one back soonest.
                    None => self.keys.pick(now_ms),
                    Some(reason) => self.keys.pick_other(now_ms, &tried, reason.same_key_ok()),
                };
                let Some((index, credential)) = key else {
                    break;
                };
                let attempt_body = match (&body, last_error.is_some()) {
                    (Some(body), true) => Some(retry_body(body, fallback)),
                    (body, _) => body.clone(),
                };
                if let Some(&(_, why)) = last_error.as_ref() {
                    let wait = backoff(retries);
                    if Instant::now() + wait >= deadline {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                    retries += 1;
                    metrics::counter!("glm_gateway_upstream_retries_total", "reason" => why.label())
                        .increment(1);
                    tracing::info!(
                        reason = why.label(),
                        key = credential.id(),
                        model = fallback,
                        "retrying an upstream call"
                    );
                }
                let call = Attempt {
                    client: self.client(timeouts.connect),
                    method: method.clone(),
                    url: &url,
                    body: attempt_body,
                    stream,
                    first_byte: timeouts.first_byte,
                    deadline,
                    errors,
                };
                match self.attempt(call, index, credential).await {
                    Ok(response) if stream => {
                        timer.stream_began();
                        return Ok(response);
                    }
                    Ok(response) => return Ok(response),
                    Err((error, None)) => return Err(error),
                    Err((error, Some(why))) => {
                        reason = Some(why);
                        last_error = Some((error, why));
                        tried.push(index);
                    }
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(last_error.map_or_else(
            || ApiError::upstream_timeout("The upstream did not answer in time."),
            |(error, _)| error,
        ))
    }

    /// One call with key `index`: its answer if 200 (a stream's once its first bytes came), or
    /// the error with whether it is worth another attempt.
    async fn attempt(
        &self,
        call: Attempt<'_>,
        index: usize,
        credential: &Credential,
    ) -> Result<UpstreamResponse, (ApiError, Option<Retry>)> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let authorization = credential
            .authorization(now_ms)
            .map_err(|e| (ApiError::internal(&e), None))?;
        let mut request = call
            .client
            .request(call.method, call.url.clone())
            .header(AUTHORIZATION, authorization);
        if let Some(body) = call.body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        // A stream's headers come at once, so the first-byte limit bounds the wait for them
        // and for its first bytes; a plain answer's headers come only with the whole answer.
        let first_byte_by = if call.stream {
            (Instant::now() + call.first_byte).min(call.deadline)
        } else {
            call.deadline
        };
        let late = || {
            zhipu_error::count_error("timeout".into());
            ApiError::upstream_timeout("The upstream did not start answering in time.")
        };
        let response = match tokio::time::timeout_at(first_byte_by, request.send()).await {
            Err(_) => {
                self.health.failed("no answer in time");
                return Err((late(), call.stream.then_some(Retry::FirstByte)));
            }
            Ok(Err(error)) => {
                self.health.failed("connection failed");
                let retry = error.is_connect().then_some(Retry::Connect);
                return Err((transport_error(&error), retry));
            }
            Ok(Ok(response)) => response,
        };
        if response.status() == reqwest::StatusCode::OK {
            let response = if call.stream {
                match first_bytes(response, first_byte_by).await {
                    Ok(response) => response,
                    Err(error) => {
                        self.health.failed("no first byte in time");
                        return Err(error);
                    }
                }
            } else {
                response
            };
            self.health.answered();
            return Ok(UpstreamResponse {
                response,
                deadline: call.deadline,
            });
        }
        self.health.answered();
        let status = response.status().as_u16();
        let body = read_capped(response, call.deadline, MAX_ERROR_BODY).await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.keys.report(index, verdict(status, &body), now_ms);
        Err(((call.errors)(status, &body), classify(status, &body)))
    }

    /// [`Self::post`] with a JSON body.
    pub async fn post_json(
        &self,
        path: &'static str,
        body: &impl serde::Serialize,
        stream: bool,
    ) -> ApiResult<UpstreamResponse> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError::internal(&e))?;
        self.post(path, body, stream).await
    }

    /// Why the upstream looks unwell, if its last call got no answer at all (any HTTP status
    /// counts as an answer), with when that was.
    pub fn trouble(&self) -> Option<String> {
        let failed = self.health.last_failure_ms.load(Ordering::Relaxed);
        if failed == 0 || failed < self.health.last_answer_ms.load(Ordering::Relaxed) {
            return None;
        }
        let what = *self
            .health
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = chrono::DateTime::from_timestamp_millis(failed)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        Some(format!("the last call got no answer ({what}) at {at}"))
    }
}

impl UpstreamResponse {
    /// Passes an SSE answer on; a 200 with any other body is Zhipu reporting an error in a
    /// plain JSON body (it does so even for `stream: true`), which becomes an HTTP error.
    pub async fn expect_event_stream(self) -> ApiResult<Self> {
        self.expect_event_stream_with(map_zhipu_error).await
    }

    /// [`Self::expect_event_stream`] with the error mapping of the surface called.
    pub async fn expect_event_stream_with(self, errors: ErrorMap) -> ApiResult<Self> {
        let content_type = self
            .response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("text/event-stream") {
            return Ok(self);
        }
        let body = read_capped(self.response, self.deadline, MAX_ERROR_BODY).await;
        Err(errors(200, &body))
    }

    /// Reads a whole (non-stream) JSON body; anything else is a 502.
    pub async fn json(self) -> ApiResult<serde_json::Value> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::new(
                ErrorCode::UpstreamError,
                "The upstream answered with a body that is not JSON.",
            )
        })
    }

    /// Reads a whole (non-stream) body before the deadline, up to `MAX_ANSWER_BODY`.
    pub async fn bytes(self) -> ApiResult<Bytes> {
        let _timer = UpstreamTimer::start();
        let too_large = || {
            ApiError::new(
                ErrorCode::UpstreamError,
                "The upstream's answer is too large.",
            )
        };
        if self
            .response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BODY as u64)
        {
            return Err(too_large());
        }
        let mut stream = self.response.bytes_stream();
        let mut body = BytesMut::new();
        loop {
            match tokio::time::timeout_at(self.deadline, stream.next()).await {
                Err(_) => {
                    return Err(ApiError::upstream_timeout(
                        "The upstream did not finish its answer in time.",
                    ))
                }
                Ok(Some(Err(error))) => return Err(transport_error(&error)),
                Ok(Some(Ok(chunk))) if body.len() + chunk.len() > MAX_ANSWER_BODY => {
                    return Err(too_large())
                }
                Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
                Ok(None) => return Ok(body.freeze()),
            }
        }
    }
}

/// What one attempt sends, and its limits.
struct Attempt<'a> {
    client: &'a reqwest::Client,
    method: reqwest::Method,
    url: &'a url::Url,
    body: Option<Bytes>,
    stream: bool,
    first_byte: Duration,
    deadline: Instant,
    errors: ErrorMap,
}

fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        // A redirect would take a signed call, or an image download, somewhere unchecked.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("glm-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Waits until `by` for a 200 stream's first bytes, then gives the response back whole (those
/// bytes first). None in time is a first-byte timeout, worth another attempt; a body that fails
/// before its first bytes is not retried.
async fn first_bytes(
    response: reqwest::Response,
    by: Instant,
) -> Result<reqwest::Response, (ApiError, Option<Retry>)> {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let mut body = response.bytes_stream();
    let first = match tokio::time::timeout_at(by, body.next()).await {
        Err(_) => {
            zhipu_error::count_error("timeout".into());
            return Err((
                ApiError::upstream_timeout("The upstream did not start answering in time."),
                Some(Retry::FirstByte),
            ));
        }
        Ok(Some(Err(error))) => return Err((transport_error(&error), None)),
        Ok(Some(Ok(first))) => Some(first),
        Ok(None) => None,
    };
    let whole = futures_util::stream::iter(first.map(Ok)).chain(body);
    let mut rebuilt = axum::http::Response::new(reqwest::Body::wrap_stream(whole));
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    Ok(reqwest::Response::from(rebuilt))
}

/// Reads at most `cap` bytes of a body; errors and timeouts end the read early.
async fn read_capped(response: reqwest::Response, deadline: Instant, cap: usize) -> Vec<u8> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while body.len() < cap {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                body.extend_from_slice(&chunk[..chunk.len().min(cap - body.len())])
            }
            _ => break,
        }
    }
    body
}

pub fn transport_error(error: &reqwest::Error) -> ApiError {
    tracing::warn!(%error, "upstream transport error");
    let label = match (error.is_timeout(), error.is_connect()) {
        (true, _) => "timeout",
        (false, true) => "connect",
        (false, false) => "transport",
    };
    zhipu_error::count_error(label.into());
    if error.is_timeout() {
        ApiError::upstream_timeout("The upstream did not answer in time.")
    } else if error.is_connect() {
        ApiError::new(
            ErrorCode::UpstreamUnreachable,
            "The gateway could not connect to the upstream.",
        )
    } else {
        ApiError::new(
            ErrorCode::UpstreamError,
            "The connection to the upstream failed.",
        )
    }
}
