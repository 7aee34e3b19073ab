//! The codes of every error a client can get, each with its one status and OpenAI `type`. The
//! `as_str` values are also stored in `usage_events.error_code` (see `docs/dashboards.md`).

use axum::http::StatusCode;

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
