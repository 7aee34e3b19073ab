//! Zhipu's Response API errors as OpenAI errors: its string codes, the HTTP-200
//! `{"code":1000,"msg":…,"success":false}` a rejected key gets (a 200 that is an error never
//! reaches a client as a success), and chat's numeric codes should they appear.

use serde_json::{json, Value};

use super::zhipu_error::{count_error, http_label, map_zhipu_error, map_zhipu_value, OTHER_CODE};
use crate::error::{ApiError, ErrorCode};

/// Maps an error answer of the Response API (any status, any bytes).
pub fn map_responses_error(status: u16, body: &[u8]) -> ApiError {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return map_zhipu_error(status, body);
    };
    let error = value.get("error").filter(|e| e.is_object());
    match (status, error) {
        // A stored response Zhipu no longer holds (a path it does not route has no such body).
        (404, Some(error)) => {
            count_error(http_label(404));
            let message = error.get("message").and_then(Value::as_str);
            let message = message.unwrap_or("Zhipu has no response with this id.");
            ApiError::new(ErrorCode::ResponseNotFound, message)
        }
        _ => in_band_error(&value).unwrap_or_else(|| map_zhipu_value(status, &value)),
    }
}

/// The error a body holds, if it is one: `success:false` with a numeric `code`, or an
/// `{"error":{…}}` that is not part of a response object. `None` for a real answer.
pub fn in_band_error(body: &Value) -> Option<ApiError> {
    if body.get("success") == Some(&Value::Bool(false)) || body.get("msg").is_some() {
        let code = body.get("code").map(code_text).unwrap_or_default();
        let message = body
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("Zhipu refused the call");
        let wrapped = json!({"error": {"code": code, "message": message}});
        // 1000–1004 (the gateway's own upstream key) map to 502 `upstream_auth_failed`, other
        // codes as chat's; none of them to a success.
        return Some(map_zhipu_value(200, &wrapped));
    }
    if body.get("object").is_some() {
        return None;
    }
    let error = body.get("error").filter(|e| e.is_object())?;
    Some(match error.get("code") {
        Some(Value::String(code)) if code.parse::<u32>().is_err() => by_code(code, error),
        _ => map_zhipu_value(200, body),
    })
}

fn code_text(code: &Value) -> String {
    match code {
        Value::String(code) => code.clone(),
        other => other.to_string(),
    }
}

/// The string codes, by what a client can do about them.
fn by_code(code: &str, error: &Value) -> ApiError {
    let raw = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("Zhipu reported an error");
    let message = format!("{raw} (zhipu code {code})");
    let param = error.get("param").and_then(Value::as_str);
    let error = match code {
        "invalid_request" | "not_implemented" | "request_too_large" => {
            ApiError::invalid_request(message)
        }
        "context_length_exceeded" => ApiError::new(ErrorCode::ContextLengthExceeded, message),
        "content_filter" => ApiError::new(ErrorCode::ContentFilter, message),
        "model_not_found" => ApiError::new(ErrorCode::ModelNotFound, message).param("model"),
        // The rejected key is the gateway's own upstream credential, never the client's.
        "authentication_error" | "invalid_api_key" | "expired" => {
            ApiError::new(ErrorCode::UpstreamAuthFailed, message).no_retry()
        }
        "permission_denied" => ApiError::new(ErrorCode::UpstreamForbidden, message),
        "rate_limit_exceeded" | "slow_down" => {
            ApiError::new(ErrorCode::RateLimitExceeded, message).retry_after(1)
        }
        "insufficient_quota" | "quota_exceeded" => {
            ApiError::new(ErrorCode::InsufficientQuota, message).no_retry()
        }
        "usage_limit_reached" => ApiError::new(ErrorCode::UsageLimitReached, message).no_retry(),
        "overloaded" | "server_is_overloaded" => {
            ApiError::new(ErrorCode::UpstreamOverloaded, message).retry_after(5)
        }
        _ => ApiError::new(ErrorCode::UpstreamError, message),
    };
    count_error(match error.code {
        ErrorCode::UpstreamError => OTHER_CODE,
        _ => code.to_owned().into(),
    });
    match param {
        Some(param) if error.param.is_none() => error.param(param),
        _ => error,
    }
}
