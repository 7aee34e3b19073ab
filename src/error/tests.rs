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
    let doc = include_str!("../../docs/dashboards.md");
    for code in all_codes() {
        assert!(
            doc.contains(&format!("| `{}` |", code.as_str())),
            "{code:?}"
        );
    }
}
