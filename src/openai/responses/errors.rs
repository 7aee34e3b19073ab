//! Zhipu's Response API errors as OpenAI errors: its string codes, the HTTP-200
//! `{"code":1000,"msg":…,"success":false}` a rejected key gets (a 200 that is an error never
//! reaches a client as a success), and chat's numeric codes should they appear.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::openai::zhipu_error::{map_zhipu_error, map_zhipu_value};

/// Maps an error answer of the Response API (any status, any bytes).
pub fn map_responses_error(status: u16, body: &[u8]) -> ApiError {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return map_zhipu_error(status, body);
    };
    let error = value.get("error").filter(|e| e.is_object());
    match (status, error) {
        // A stored response Zhipu no longer holds (a path it does not route has no such body).
        (404, Some(error)) => {
            let message = error.get("message").and_then(Value::as_str);
            let message = message.unwrap_or("Zhipu has no response with this id.");
            ApiError::not_found("response_not_found", message)
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
    let limited = |code: &'static str| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            message.clone(),
        )
        .code(code)
    };
    let error = match code {
        "invalid_request" | "not_implemented" | "request_too_large" => {
            ApiError::invalid_request(message).code(code.to_owned())
        }
        "context_length_exceeded" | "content_filter" => {
            ApiError::invalid_request(message).code(code.to_owned())
        }
        "model_not_found" => ApiError::not_found("model_not_found", message).param("model"),
        // The rejected key is the gateway's own upstream credential, never the client's.
        "authentication_error" | "invalid_api_key" | "expired" => {
            ApiError::bad_gateway("upstream_auth_failed", message).no_retry()
        }
        "permission_denied" => ApiError::forbidden("upstream_forbidden", message),
        "rate_limit_exceeded" | "slow_down" => limited("rate_limit_exceeded").retry_after(1),
        "insufficient_quota" | "quota_exceeded" => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", message)
                .code("insufficient_quota")
                .no_retry()
        }
        "usage_limit_reached" => limited("usage_limit_reached").no_retry(),
        "overloaded" | "server_is_overloaded" => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
                .code("upstream_overloaded")
                .retry_after(5)
        }
        _ => ApiError::bad_gateway("upstream_error", message),
    };
    match param {
        Some(param) if error.param.is_none() => error.param(param),
        _ => error,
    }
}
