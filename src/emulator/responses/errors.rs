//! The Response API's error replies: `{"error":{"code":"<string>","message"}}` with string codes
//! (not chat's numbers), and the HTTP-200 `success:false` body a bad or missing key gets.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Codes a `#error CODE` directive may ask for, as live Zhipu sends them on this surface.
pub(crate) const CODES: &[&str] = &[
    "invalid_request",
    "model_not_found",
    "not_implemented",
    "request_too_large",
    "authentication_error",
    "invalid_api_key",
    "expired",
    "permission_denied",
    "context_length_exceeded",
    "rate_limit_exceeded",
    "insufficient_quota",
    "quota_exceeded",
    "usage_limit_reached",
    "server_error",
    "server_is_overloaded",
    "overloaded",
    "slow_down",
    "content_filter",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RespError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl RespError {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: status_for(code),
            code: code.to_owned(),
            message: message.into(),
            param: None,
        }
    }

    /// 400 `invalid_request` naming the parameter.
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        let mut error = Self::new("invalid_request", message);
        error.param = Some(param.to_owned());
        error
    }

    /// 404 for an id the store does not hold (never stored, deleted or expired).
    pub(crate) fn unknown_response(id: &str) -> Self {
        let mut error = Self::new(
            "invalid_request",
            format!("Response with id '{id}' not found."),
        );
        error.status = StatusCode::NOT_FOUND;
        error
    }

    /// The error a `#error CODE` directive asks for.
    pub(crate) fn forced(code: &str) -> Self {
        Self::new(code, format!("emulated error {code}"))
    }
}

impl IntoResponse for RespError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "param": self.param}});
        (self.status, Json(body)).into_response()
    }
}

/// The statuses seen live: 400 for request problems, 429 for limits and overload.
pub(crate) fn status_for(code: &str) -> StatusCode {
    match code {
        "authentication_error" | "invalid_api_key" | "expired" => StatusCode::UNAUTHORIZED,
        "permission_denied" => StatusCode::FORBIDDEN,
        "rate_limit_exceeded"
        | "insufficient_quota"
        | "quota_exceeded"
        | "usage_limit_reached"
        | "overloaded"
        | "server_is_overloaded"
        | "slow_down" => StatusCode::TOO_MANY_REQUESTS,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What this surface answers to a bad or missing key: HTTP 200 and no `error` object.
pub(crate) fn auth_failed() -> Response {
    let body = json!({"code": 1000, "msg": "身份验证失败。", "success": false});
    (StatusCode::OK, Json(body)).into_response()
}
