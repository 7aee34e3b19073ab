//! The client for Zhipu's API: signs each call, applies the connect / first-byte / total
//! timeouts and turns any non-200 answer into an OpenAI-shaped error (`zhipu_error` owns that
//! mapping). It knows nothing of OpenAI's request shapes; `openai` translates before and after.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::config::{derive_responses_base, ImagesConfig, ZhipuConfig};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// How an upstream surface's error answers become OpenAI errors: (HTTP status, body).
pub type ErrorMap = fn(u16, &[u8]) -> ApiError;

mod credential;
mod images;
mod pool;
mod responses_error;
pub mod zhipu_error;

pub use credential::{sign, Credential};
pub use images::ImageFetcher;
pub use pool::{verdict, KeyPool, KeyVerdict};
pub use responses_error::{in_band_error, map_responses_error};
pub use zhipu_error::{map_zhipu_error, map_zhipu_value};

/// Error bodies are read up to this size; the rest is ignored.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A plain answer larger than this is refused rather than held in memory.
const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;

pub struct ZhipuClient {
    http: reqwest::Client,
    base_url: String,
    /// Zhipu's Response API (`/api/v1`), signed with the same credentials.
    responses_base_url: String,
    keys: KeyPool,
    first_byte_timeout: Duration,
    total_timeout: Duration,
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
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // A redirect would take a signed call, or an image download, somewhere unchecked.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("glm-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            images: ImageFetcher::new(http.clone(), &config.base_url, images),
            http,
            base_url: config.base_url.clone(),
            responses_base_url: config
                .responses_base_url
                .clone()
                .unwrap_or_else(|| derive_responses_base(&config.base_url)),
            keys: KeyPool::new(
                config
                    .api_keys
                    .iter()
                    .map(|key| Credential::new(key, config.auth))
                    .collect(),
            ),
            first_byte_timeout: config.first_byte_timeout,
            total_timeout: config.total_timeout,
            health: UpstreamHealth::default(),
        })
    }

    /// POSTs `body` (JSON) to `path` under the base URL and returns the response once its
    /// status is 200; any other status becomes the mapped OpenAI error.
    ///
    /// For a stream the headers come at once, so `first_byte_timeout` bounds the wait for them;
    /// a plain answer's headers come only with the whole answer, so only `total_timeout` does.
    pub async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        stream: bool,
    ) -> ApiResult<UpstreamResponse> {
        let url = format!("{}{path}", self.base_url);
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
        let url = format!("{}{path}", self.responses_base_url);
        self.send(method, url, body, stream, map_responses_error)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Vec<u8>>,
        stream: bool,
        errors: ErrorMap,
    ) -> ApiResult<UpstreamResponse> {
        let deadline = Instant::now() + self.total_timeout;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let (key, credential) = self.keys.pick(now_ms).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UpstreamNotConfigured,
                "The gateway has no Zhipu API key configured.",
            )
        })?;
        let authorization = credential
            .authorization(now_ms)
            .map_err(|e| ApiError::internal(&e))?;
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, authorization);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let request = request.send();
        let wait = if stream {
            self.first_byte_timeout.min(self.total_timeout)
        } else {
            self.total_timeout
        };
        let response = match tokio::time::timeout(wait, request).await {
            Err(_) => {
                self.health.failed("no answer in time");
                return Err(ApiError::upstream_timeout(
                    "The upstream did not start answering in time.",
                ));
            }
            Ok(Err(error)) => {
                self.health.failed("connection failed");
                return Err(transport_error(&error));
            }
            Ok(Ok(response)) => response,
        };
        self.health.answered();
        if response.status() == reqwest::StatusCode::OK {
            return Ok(UpstreamResponse { response, deadline });
        }
        let status = response.status().as_u16();
        let body = read_capped(response, deadline, MAX_ERROR_BODY).await;
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.keys.report(key, verdict(status, &body), now_ms);
        Err(errors(status, &body))
    }

    /// [`Self::post`] with a JSON body.
    pub async fn post_json(
        &self,
        path: &str,
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
