//! The one error type of the request path. Whatever goes wrong, a client sees OpenAI's shape:
//! `{"error":{"message","type","param","code"}}` with the matching status and retry hints.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error as a client sees it. Internal causes are logged where they happen and never leak
/// into `message`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub code: Option<Cow<'static, str>>,
    pub message: String,
    pub param: Option<String>,
    /// `Some(false)` sends `x-should-retry: false`, which stops the OpenAI SDKs' retry loop
    /// where a retry cannot succeed (no balance, a disabled account).
    pub should_retry: Option<bool>,
    /// Seconds for `retry-after`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            code: None,
            message: message.into(),
            param: None,
            should_retry: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 401 for a missing, unknown, revoked or expired downstream key.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message).code(code)
    }

    /// 403 `permission_error`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message).code(code)
    }

    /// 404 `invalid_request_error`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message).code(code)
    }

    /// 502 for an upstream that failed or answered something unusable.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "server_error", message).code(code)
    }

    /// 504 for an upstream that did not answer in time. Not to be retried by the SDKs: the
    /// upstream may well still be generating (and billing) the first attempt.
    pub fn upstream_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "server_error", message)
            .code("upstream_timeout")
            .no_retry()
    }

    /// 500 with a generic message; the cause is logged here and stays out of the response.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The gateway had an internal error. Please try again.",
        )
        .code("internal_error")
    }

    pub fn code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
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
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error_type,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
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
mod tests {
    use super::*;

    #[test]
    fn body_has_all_four_fields_even_when_empty() {
        let body = ApiError::invalid_request("bad").body();
        let error = &body["error"];
        assert_eq!(error["message"], "bad");
        assert_eq!(error["type"], "invalid_request_error");
        assert!(error.get("param").is_some_and(Value::is_null));
        assert!(error.get("code").is_some_and(Value::is_null));
    }

    #[test]
    fn retry_hints_become_headers() {
        let response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "slow")
            .no_retry()
            .retry_after(3)
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert_eq!(response.headers()["retry-after"], "3");
    }
}
