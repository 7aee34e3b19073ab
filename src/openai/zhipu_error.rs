//! Zhipu's error answers as OpenAI errors: status, type, code and retry hints per Zhipu business
//! code, with a fallback by HTTP status for bodies that are not Zhipu's `{"error":{…}}`.

use axum::http::StatusCode;
use serde_json::Value;

use crate::error::ApiError;

/// Longest Zhipu message echoed to clients, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// Field names that a 12xx parameter error may mention; the first one found becomes `param`.
const KNOWN_PARAMS: &[&str] = &[
    "top_p",
    "temperature",
    "max_tokens",
    "response_format",
    "tool_choice",
    "tools",
    "messages",
    "stop",
    "user_id",
    "do_sample",
    "request_id",
    "thinking",
];

/// Maps an upstream error answer to the error the client sees. `status` is the upstream HTTP
/// status (200 when Zhipu put an error inside a success answer). Any bytes are accepted.
pub fn map_zhipu_error(status: u16, body: &[u8]) -> ApiError {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => map_zhipu_value(status, &value),
        Err(_) => by_status(status, None),
    }
}

/// [`map_zhipu_error`] for a body that is already parsed.
pub(crate) fn map_zhipu_value(status: u16, body: &Value) -> ApiError {
    let Some(error) = body.get("error").filter(|e| e.is_object()) else {
        return by_status(status, None);
    };
    let code = match error.get("code") {
        Some(Value::String(code)) => Some(code.trim().to_owned()),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    let raw = error
        .get("message")
        .and_then(Value::as_str)
        .map_or("Zhipu reported an error", truncate);
    let message = match &code {
        Some(code) => format!("{raw} (zhipu code {code})"),
        None => raw.to_owned(),
    };
    let by_code = code
        .as_deref()
        .and_then(|c| c.parse::<u32>().ok())
        .and_then(|c| map_code(c, &message, raw));
    by_code.unwrap_or_else(|| by_status(status, Some(message)))
}

/// The table of Zhipu business codes; `None` for a code it does not know.
fn map_code(code: u32, message: &str, raw: &str) -> Option<ApiError> {
    let error = match code {
        // The key rejected here is the gateway's own upstream credential, never the client's
        // downstream key, so the client gets a 502 it cannot fix by retrying, not a 401.
        1000..=1004 => ApiError::bad_gateway("upstream_auth_failed", message).no_retry(),
        1110..=1112 | 1120 | 1121 => {
            ApiError::forbidden("upstream_account_unavailable", message).no_retry()
        }
        1113 => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", message)
            .code("insufficient_quota")
            .no_retry(),
        1210 | 1212..=1215 => {
            let error = ApiError::invalid_request(message).code("invalid_request");
            match mentioned_param(raw) {
                Some(param) => error.param(param),
                None => error,
            }
        }
        1211 | 1221 | 1222 => ApiError::not_found("model_not_found", message),
        1220 => ApiError::forbidden("model_not_permitted", message),
        1230 | 1234 => ApiError::bad_gateway("upstream_error", message),
        1231 => ApiError::invalid_request(message).code("duplicate_request_id"),
        1261 => ApiError::invalid_request(message)
            .code("context_length_exceeded")
            .param("messages"),
        1301 => ApiError::invalid_request(message).code("content_filter"),
        1302 => rate_limited("rate_limit_exceeded", message).retry_after(1),
        1303 => rate_limited("rate_limit_exceeded", message).retry_after(5),
        1304 => rate_limited("daily_quota_exceeded", message).no_retry(),
        1305 => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
            .code("upstream_overloaded")
            .retry_after(5),
        1308 | 1310 | 1313 => rate_limited("usage_limit_reached", message).no_retry(),
        _ => return None,
    };
    Some(error)
}

/// The fallback for unknown codes and bodies that are not Zhipu errors (Spring's 404 JSON,
/// HTML from a proxy, nothing). Never a 409: the OpenAI SDKs retry those.
fn by_status(status: u16, message: Option<String>) -> ApiError {
    let message = message
        .unwrap_or_else(|| format!("upstream answered HTTP {status} with an unexpected body"));
    match status {
        400 => ApiError::invalid_request(message).code("invalid_request"),
        401 => ApiError::bad_gateway("upstream_auth_failed", message).no_retry(),
        403 => ApiError::forbidden("upstream_forbidden", message),
        // An unknown upstream path means the gateway is misconfigured; retrying cannot help.
        404 => ApiError::bad_gateway("upstream_not_found", message).no_retry(),
        429 => rate_limited("rate_limit_exceeded", message),
        _ => ApiError::bad_gateway("upstream_error", message),
    }
}

fn rate_limited(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message).code(code)
}

/// The first known field name that appears as a whole word (Chinese text around it is fine).
fn mentioned_param(message: &str) -> Option<&'static str> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    KNOWN_PARAMS.iter().copied().find(|param| {
        message.match_indices(param).any(|(at, _)| {
            let before = message[..at].chars().next_back();
            let after = message[at + param.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
    })
}

fn truncate(message: &str) -> &str {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => &message[..at],
        None => message,
    }
}

#[cfg(test)]
mod tests;
