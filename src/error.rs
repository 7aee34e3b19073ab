//! The one error type of the request path. Whatever goes wrong, a client sees OpenAI's shape:
//! `{"error":{"message","type","param","code"}}` with the matching status and retry hints.
//! The codes are an enum: its `as_str` values are also stored in `usage_events.error_code`
//! (listed in `docs/dashboards.md`), so they change only on purpose.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Every code a client can get and the ledger can store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // The request, as the gateway judges it.
    InvalidRequest,
    InvalidJson,
    RequestTooLarge,
    RequestTimeout,
    InvalidPath,
    InvalidHttpRequest,
    UriTooLong,
    RequestHeaderTooLarge,
    TooManyRequestsInFlight,
    RequestBodyBudgetExhausted,
    UnknownUrl,
    MethodNotAllowed,
    UnsupportedEndpoint,
    MissingApiKey,
    InvalidApiKey,
    ApiKeyRevoked,
    ApiKeyExpired,
    InvalidAdminToken,
    KeyNotFound,
    ModelNotAllowed,
    CancelNotSupported,
    RateLimitExceeded,
    /// A key's `rpm` (OpenAI's type `requests`).
    RequestRateExceeded,
    /// A key's `tpm` (OpenAI's type `tokens`).
    TokenRateExceeded,
    /// The limits' counter store is down and the policy is to refuse.
    LimitsUnavailable,
    InsufficientQuota,
    /// The client left before the answer began (a row-only code, as web servers log 499).
    ClientClosedRequest,
    // What Zhipu said about the request.
    ModelNotFound,
    ResponseNotFound,
    ModelNotPermitted,
    ContextLengthExceeded,
    ContentFilter,
    DuplicateRequestId,
    DailyQuotaExceeded,
    UsageLimitReached,
    // The upstream failing.
    UpstreamAuthFailed,
    UpstreamAccountUnavailable,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamNotConfigured,
    UpstreamUnreachable,
    UpstreamError,
    UpstreamInvalidResponse,
    UpstreamStreamIncomplete,
    UpstreamNetworkError,
    UpstreamOverloaded,
    UpstreamTimeout,
    UpstreamIdleTimeout,
    UpstreamEventTooLarge,
    UpstreamImageHost,
    UpstreamImageUnavailable,
    UpstreamImageTooLarge,
    // The gateway itself.
    InternalError,
    GatewayShuttingDown,
    /// The usage journal cannot take rows and its memory is full (`on_journal_full = "refuse"`).
    LedgerUnavailable,
    /// A stream cut off by the gateway stopping (a row-only code).
    StreamInterrupted,
}

impl ErrorCode {
    /// The `code` clients see and `usage_events.error_code` stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidJson => "invalid_json",
            Self::RequestTooLarge => "request_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::InvalidPath => "invalid_path",
            Self::InvalidHttpRequest => "invalid_http_request",
            Self::UriTooLong => "uri_too_long",
            Self::RequestHeaderTooLarge => "request_header_too_large",
            Self::TooManyRequestsInFlight => "too_many_requests_in_flight",
            Self::RequestBodyBudgetExhausted => "request_body_budget_exhausted",
            Self::UnknownUrl => "unknown_url",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedEndpoint => "unsupported_endpoint",
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::ApiKeyExpired => "api_key_expired",
            Self::InvalidAdminToken => "invalid_admin_token",
            Self::KeyNotFound => "key_not_found",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::CancelNotSupported => "cancel_not_supported",
            Self::ResponseNotFound => "response_not_found",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::RequestRateExceeded => "rate_limit_exceeded",
            Self::TokenRateExceeded => "rate_limit_exceeded",
            Self::LimitsUnavailable => "limits_unavailable",
            Self::InsufficientQuota => "insufficient_quota",
            Self::ClientClosedRequest => "client_closed_request",
            Self::ModelNotFound => "model_not_found",
            Self::ModelNotPermitted => "model_not_permitted",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFilter => "content_filter",
            Self::DuplicateRequestId => "duplicate_request_id",
            Self::DailyQuotaExceeded => "daily_quota_exceeded",
            Self::UsageLimitReached => "usage_limit_reached",
            Self::UpstreamAuthFailed => "upstream_auth_failed",
            Self::UpstreamAccountUnavailable => "upstream_account_unavailable",
            Self::UpstreamForbidden => "upstream_forbidden",
            Self::UpstreamNotFound => "upstream_not_found",
            Self::UpstreamNotConfigured => "upstream_not_configured",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamInvalidResponse => "upstream_invalid_response",
            Self::UpstreamStreamIncomplete => "upstream_stream_incomplete",
            Self::UpstreamNetworkError => "upstream_network_error",
            Self::UpstreamOverloaded => "upstream_overloaded",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamIdleTimeout => "upstream_idle_timeout",
            Self::UpstreamEventTooLarge => "upstream_event_too_large",
            Self::UpstreamImageHost => "upstream_image_host",
            Self::UpstreamImageUnavailable => "upstream_image_unavailable",
            Self::UpstreamImageTooLarge => "upstream_image_too_large",
            Self::InternalError => "internal_error",
            Self::GatewayShuttingDown => "gateway_shutting_down",
            Self::LedgerUnavailable => "ledger_unavailable",
            Self::StreamInterrupted => "stream_interrupted",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest
            | Self::InvalidJson
            | Self::UnsupportedEndpoint
            | Self::CancelNotSupported
            | Self::InvalidPath
            | Self::InvalidHttpRequest
            | Self::ContextLengthExceeded
            | Self::ContentFilter
            | Self::DuplicateRequestId => StatusCode::BAD_REQUEST,
            Self::MissingApiKey
            | Self::InvalidApiKey
            | Self::ApiKeyRevoked
            | Self::ApiKeyExpired
            | Self::InvalidAdminToken => StatusCode::UNAUTHORIZED,
            Self::ModelNotAllowed
            | Self::ModelNotPermitted
            | Self::UpstreamAccountUnavailable
            | Self::UpstreamForbidden => StatusCode::FORBIDDEN,
            Self::UnknownUrl | Self::KeyNotFound | Self::ModelNotFound | Self::ResponseNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::RequestHeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::RateLimitExceeded
            | Self::RequestRateExceeded
            | Self::TokenRateExceeded
            | Self::InsufficientQuota
            | Self::DailyQuotaExceeded
            | Self::UsageLimitReached => StatusCode::TOO_MANY_REQUESTS,
            Self::ClientClosedRequest => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::UpstreamAuthFailed
            | Self::UpstreamNotFound
            | Self::UpstreamNotConfigured
            | Self::UpstreamUnreachable
            | Self::UpstreamError
            | Self::UpstreamInvalidResponse
            | Self::UpstreamStreamIncomplete
            | Self::UpstreamNetworkError
            | Self::UpstreamEventTooLarge
            | Self::UpstreamImageHost
            | Self::UpstreamImageUnavailable
            | Self::UpstreamImageTooLarge => StatusCode::BAD_GATEWAY,
            Self::UpstreamOverloaded
            | Self::TooManyRequestsInFlight
            | Self::RequestBodyBudgetExhausted
            | Self::GatewayShuttingDown
            | Self::LedgerUnavailable
            | Self::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout | Self::UpstreamIdleTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            // Recorded for a stream whose 200 had already gone out.
            Self::StreamInterrupted => StatusCode::OK,
        }
    }

    /// OpenAI's `type`.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::ModelNotAllowed
            | Self::ModelNotPermitted
            | Self::UpstreamAccountUnavailable
            | Self::UpstreamForbidden => "permission_error",
            Self::RateLimitExceeded | Self::DailyQuotaExceeded | Self::UsageLimitReached => {
                "rate_limit_error"
            }
            Self::InsufficientQuota => "insufficient_quota",
            Self::RequestRateExceeded => "requests",
            Self::TokenRateExceeded => "tokens",
            Self::InvalidRequest
            | Self::InvalidJson
            | Self::RequestTooLarge
            | Self::RequestTimeout
            | Self::InvalidPath
            | Self::InvalidHttpRequest
            | Self::UriTooLong
            | Self::RequestHeaderTooLarge
            | Self::UnknownUrl
            | Self::MethodNotAllowed
            | Self::UnsupportedEndpoint
            | Self::CancelNotSupported
            | Self::ResponseNotFound
            | Self::MissingApiKey
            | Self::InvalidApiKey
            | Self::ApiKeyRevoked
            | Self::ApiKeyExpired
            | Self::InvalidAdminToken
            | Self::KeyNotFound
            | Self::ClientClosedRequest
            | Self::ModelNotFound
            | Self::ContextLengthExceeded
            | Self::ContentFilter
            | Self::DuplicateRequestId => "invalid_request_error",
            Self::UpstreamAuthFailed
            | Self::UpstreamNotFound
            | Self::UpstreamNotConfigured
            | Self::UpstreamUnreachable
            | Self::UpstreamError
            | Self::UpstreamInvalidResponse
            | Self::UpstreamStreamIncomplete
            | Self::UpstreamNetworkError
            | Self::UpstreamOverloaded
            | Self::UpstreamTimeout
            | Self::UpstreamIdleTimeout
            | Self::UpstreamEventTooLarge
            | Self::UpstreamImageHost
            | Self::UpstreamImageUnavailable
            | Self::UpstreamImageTooLarge
            | Self::InternalError
            | Self::GatewayShuttingDown
            | Self::LedgerUnavailable
            | Self::LimitsUnavailable
            | Self::TooManyRequestsInFlight
            | Self::RequestBodyBudgetExhausted
            | Self::StreamInterrupted => "server_error",
        }
    }
}

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
        tracing::error!(error = %cause, "internal error");
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
mod tests {
    use super::*;

    #[test]
    fn body_has_all_four_fields() {
        let body = ApiError::invalid_request("bad").body();
        let error = &body["error"];
        assert_eq!(error["message"], "bad");
        assert_eq!(error["type"], "invalid_request_error");
        assert!(error.get("param").is_some_and(Value::is_null));
        assert_eq!(error["code"], "invalid_request");
    }

    #[test]
    fn retry_hints_become_headers() {
        let response = ApiError::new(ErrorCode::RateLimitExceeded, "slow")
            .no_retry()
            .retry_after(3)
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert_eq!(response.headers()["retry-after"], "3");
    }

    #[test]
    fn client_codes_are_4xx_and_upstream_codes_5xx() {
        assert_eq!(ErrorCode::ClientClosedRequest.status().as_u16(), 499);
        for code in [ErrorCode::UpstreamError, ErrorCode::UpstreamTimeout] {
            assert!(code.status().is_server_error());
            assert_eq!(code.error_type(), "server_error");
        }
        assert!(ErrorCode::ModelNotAllowed.status().is_client_error());
    }

    /// Every code, listed where a new one must be added (the match fails to compile otherwise).
    fn all_codes() -> Vec<ErrorCode> {
        let all = vec![
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidJson,
            ErrorCode::RequestTooLarge,
            ErrorCode::RequestTimeout,
            ErrorCode::InvalidPath,
            ErrorCode::InvalidHttpRequest,
            ErrorCode::UriTooLong,
            ErrorCode::RequestHeaderTooLarge,
            ErrorCode::TooManyRequestsInFlight,
            ErrorCode::RequestBodyBudgetExhausted,
            ErrorCode::UnknownUrl,
            ErrorCode::MethodNotAllowed,
            ErrorCode::UnsupportedEndpoint,
            ErrorCode::MissingApiKey,
            ErrorCode::InvalidApiKey,
            ErrorCode::ApiKeyRevoked,
            ErrorCode::ApiKeyExpired,
            ErrorCode::InvalidAdminToken,
            ErrorCode::KeyNotFound,
            ErrorCode::ModelNotAllowed,
            ErrorCode::CancelNotSupported,
            ErrorCode::RateLimitExceeded,
            ErrorCode::RequestRateExceeded,
            ErrorCode::TokenRateExceeded,
            ErrorCode::LimitsUnavailable,
            ErrorCode::InsufficientQuota,
            ErrorCode::ClientClosedRequest,
            ErrorCode::ModelNotFound,
            ErrorCode::ResponseNotFound,
            ErrorCode::ModelNotPermitted,
            ErrorCode::ContextLengthExceeded,
            ErrorCode::ContentFilter,
            ErrorCode::DuplicateRequestId,
            ErrorCode::DailyQuotaExceeded,
            ErrorCode::UsageLimitReached,
            ErrorCode::UpstreamAuthFailed,
            ErrorCode::UpstreamAccountUnavailable,
            ErrorCode::UpstreamForbidden,
            ErrorCode::UpstreamNotFound,
            ErrorCode::UpstreamNotConfigured,
            ErrorCode::UpstreamUnreachable,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamInvalidResponse,
            ErrorCode::UpstreamStreamIncomplete,
            ErrorCode::UpstreamNetworkError,
            ErrorCode::UpstreamOverloaded,
            ErrorCode::UpstreamTimeout,
            ErrorCode::UpstreamIdleTimeout,
            ErrorCode::UpstreamEventTooLarge,
            ErrorCode::UpstreamImageHost,
            ErrorCode::UpstreamImageUnavailable,
            ErrorCode::UpstreamImageTooLarge,
            ErrorCode::InternalError,
            ErrorCode::GatewayShuttingDown,
            ErrorCode::LedgerUnavailable,
            ErrorCode::StreamInterrupted,
        ];
        for code in &all {
            match code {
                ErrorCode::InvalidRequest
                | ErrorCode::InvalidJson
                | ErrorCode::RequestTooLarge
                | ErrorCode::RequestTimeout
                | ErrorCode::InvalidPath
                | ErrorCode::InvalidHttpRequest
                | ErrorCode::UriTooLong
                | ErrorCode::RequestHeaderTooLarge
                | ErrorCode::TooManyRequestsInFlight
                | ErrorCode::RequestBodyBudgetExhausted
                | ErrorCode::UnknownUrl
                | ErrorCode::MethodNotAllowed
                | ErrorCode::UnsupportedEndpoint
                | ErrorCode::MissingApiKey
                | ErrorCode::InvalidApiKey
                | ErrorCode::ApiKeyRevoked
                | ErrorCode::ApiKeyExpired
                | ErrorCode::InvalidAdminToken
                | ErrorCode::KeyNotFound
                | ErrorCode::ModelNotAllowed
                | ErrorCode::CancelNotSupported
                | ErrorCode::RateLimitExceeded
                | ErrorCode::RequestRateExceeded
                | ErrorCode::TokenRateExceeded
                | ErrorCode::LimitsUnavailable
                | ErrorCode::InsufficientQuota
                | ErrorCode::ClientClosedRequest
                | ErrorCode::ModelNotFound
                | ErrorCode::ResponseNotFound
                | ErrorCode::ModelNotPermitted
                | ErrorCode::ContextLengthExceeded
                | ErrorCode::ContentFilter
                | ErrorCode::DuplicateRequestId
                | ErrorCode::DailyQuotaExceeded
                | ErrorCode::UsageLimitReached
                | ErrorCode::UpstreamAuthFailed
                | ErrorCode::UpstreamAccountUnavailable
                | ErrorCode::UpstreamForbidden
                | ErrorCode::UpstreamNotFound
                | ErrorCode::UpstreamNotConfigured
                | ErrorCode::UpstreamUnreachable
                | ErrorCode::UpstreamError
                | ErrorCode::UpstreamInvalidResponse
                | ErrorCode::UpstreamStreamIncomplete
                | ErrorCode::UpstreamNetworkError
                | ErrorCode::UpstreamOverloaded
                | ErrorCode::UpstreamTimeout
                | ErrorCode::UpstreamIdleTimeout
                | ErrorCode::UpstreamEventTooLarge
                | ErrorCode::UpstreamImageHost
                | ErrorCode::UpstreamImageUnavailable
                | ErrorCode::UpstreamImageTooLarge
                | ErrorCode::InternalError
                | ErrorCode::GatewayShuttingDown
                | ErrorCode::LedgerUnavailable
                | ErrorCode::StreamInterrupted => {}
            }
        }
        all
    }

    #[test]
    fn every_code_is_listed_for_dashboards() {
        let doc = include_str!("../docs/dashboards.md");
        for code in all_codes() {
            assert!(
                doc.contains(&format!("| `{}` |", code.as_str())),
                "{code:?}"
            );
        }
    }
}
