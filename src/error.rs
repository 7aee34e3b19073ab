//! The one error type of the request path. Whatever goes wrong, a client sees OpenAI's shape:
//! `{"error":{"message","type","param","code"}}` with the matching status and retry hints.
//! The codes are an enum: its `as_str` values are also stored in `usage_events.error_code`
//! (listed in `docs/dashboards.md`), so they change only on purpose.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

mod code;

pub use code::ErrorCode;

/// An error as a client sees it. Internal causes are logged where they happen and never leak
/// into `message`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    /// `Some(false)` sends `x-should-retry: false`, which stops the OpenAI SDKs' retry loop
    /// where a retry cannot succeed (no balance, a disabled account).
    pub should_retry: Option<bool>,
    /// Seconds for `retry-after`.
    pub retry_after: Option<u64>,
    /// More headers for the answer (a limit refusal's `x-ratelimit-*`); boxed, as most
    /// errors have none.
    headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            should_retry: None,
            retry_after: None,
            headers: None,
        }
    }

    /// 400 `invalid_request`, the usual answer to a bad field (name it with `param`).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 504 for an upstream that did not answer in time. Not to be retried by the SDKs: the
    /// upstream may well still be generating (and billing) the first attempt.
    pub fn upstream_timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UpstreamTimeout, message).no_retry()
    }

    /// 500 with a generic message; the cause is logged here and stays out of the response.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = ?cause.to_string(), "internal error");
        Self::new(
            ErrorCode::InternalError,
            "The gateway had an internal error. Please try again.",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// More headers for the answer.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers.get_or_insert_with(Box::default)
    }

    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.should_retry = Some(false);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The `{"error":{…}}` body, also used as the payload of a mid-stream error event.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.code.error_type(),
                "param": self.param,
                "code": self.code.as_str(),
            }
        })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(&error)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status().as_u16(),
            self.code.as_str(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(extra) = self.headers.take() {
            headers.extend(*extra);
        }
        if let Some(retry) = self.should_retry {
            let value = if retry { "true" } else { "false" };
            headers.insert("x-should-retry", HeaderValue::from_static(value));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests;
