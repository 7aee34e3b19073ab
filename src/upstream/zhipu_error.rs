//! Zhipu's error answers as OpenAI errors: status, type, code and retry hints per Zhipu business
//! code, with a fallback by HTTP status for bodies that are not Zhipu's `{"error":{…}}`.
//! Messages are English, ending with Zhipu's code and original text.

use metrics::SharedString;
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};
use crate::telemetry::series;

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
    map_zhipu_error_for(status, body, None)
}

/// [`map_zhipu_error`], naming `model` (the name the client sent) in the messages that are
/// about it; Zhipu's own body never names it.
pub fn map_zhipu_error_for(status: u16, body: &[u8], model: Option<&str>) -> ApiError {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => map_zhipu_value_for(status, &value, model),
        Err(_) => {
            count_error(http_label(status));
            by_status(status, None)
        }
    }
}

/// [`map_zhipu_error`] for a body that is already parsed.
pub fn map_zhipu_value(status: u16, body: &Value) -> ApiError {
    map_zhipu_value_for(status, body, None)
}

/// [`map_zhipu_error_for`] for a body that is already parsed. The message is English, in
/// OpenAI's wording where OpenAI has one, and ends with Zhipu's code and original text, e.g.
/// "… (zhipu code 1211: 模型不存在，请检查模型代码。)".
pub fn map_zhipu_value_for(status: u16, body: &Value, model: Option<&str>) -> ApiError {
    let Some(error) = body.get("error").filter(|e| e.is_object()) else {
        count_error(http_label(status));
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
        .map(truncate)
        .filter(|raw| !raw.trim().is_empty());
    let origin = match (&code, raw) {
        (Some(code), Some(raw)) => format!("(zhipu code {code}: {raw})"),
        (Some(code), None) => format!("(zhipu code {code})"),
        (None, Some(raw)) => format!("(zhipu: {raw})"),
        (None, None) => "(zhipu gave no details)".to_owned(),
    };
    let raw = raw.unwrap_or_default();
    let by_code = code
        .as_deref()
        .and_then(|c| c.parse::<u32>().ok())
        .and_then(|c| map_code(c, raw, model, &origin));
    count_error(match (&by_code, code) {
        (Some(_), Some(code)) => SharedString::from(code),
        (None, Some(_)) => OTHER_CODE,
        (_, None) => http_label(status),
    });
    by_code.unwrap_or_else(|| by_status(status, Some(format!("{} {origin}", generic(status)))))
}

/// The label of an error code the mapping does not know: Zhipu's codes are few, but an
/// upstream may send anything, and each label is a series.
pub const OTHER_CODE: SharedString = SharedString::const_str("other");

/// Counts one upstream error answer (every attempt's) in `glm_gateway_upstream_errors_total`:
/// by Zhipu's business code when the mapping knows it (`1301`, `model_not_found`), `other` for
/// a code it does not, `http_<status>` for a body without a code, and `timeout`, `connect` or
/// `transport` when no answer came.
pub fn count_error(label: SharedString) {
    series::upstream_error(label);
}

/// The label of an error answer without a Zhipu code.
pub fn http_label(status: u16) -> SharedString {
    SharedString::from(format!("http_{status}"))
}

/// Names `model` in an already-mapped error that speaks of "The model" without naming it, for
/// callers that learn the model only after the error was mapped (the upstream client does not
/// know it).
pub fn name_the_model(mut error: ApiError, model: &str) -> ApiError {
    if let Some(rest) = error.message.strip_prefix("The model ") {
        if !rest.starts_with('`') {
            error.message = format!("The model `{model}` {rest}");
        }
    }
    error
}

/// The table of Zhipu business codes; `None` for a code it does not know. `origin` is the
/// "(zhipu code …)" tail every message ends with.
fn map_code(code: u32, raw: &str, model: Option<&str>, origin: &str) -> Option<ApiError> {
    let say = |english: &str| format!("{english} {origin}");
    let the_model = model.map_or_else(|| "The model".to_owned(), |m| format!("The model `{m}`"));
    let error = match code {
        // The key rejected here is the gateway's own upstream credential, never the client's
        // downstream key, so the client gets a 502 it cannot fix by retrying, not a 401.
        1000..=1004 => ApiError::new(ErrorCode::UpstreamAuthFailed,
            say("The gateway's upstream credential was rejected by Zhipu."),
        )
        .no_retry(),
        1110..=1112 | 1120 | 1121 => ApiError::new(ErrorCode::UpstreamAccountUnavailable,
            say("The gateway's Zhipu account is unavailable (inactive, locked or missing)."),
        )
        .no_retry(),
        1113 => ApiError::new(ErrorCode::InsufficientQuota,
            say("You exceeded your current quota, please check your plan and billing details."),
        )
        .no_retry(),
        1210 | 1212..=1215 => {
            let param = mentioned_param(raw);
            let english = match (code, param) {
                (1212, _) => "This model does not support the requested operation.".to_owned(),
                (1213, Some(p)) => format!("Missing required parameter: '{p}'."),
                (1213, None) => "A required parameter is missing.".to_owned(),
                (1215, _) => "Some parameters of the request conflict with each other.".to_owned(),
                (_, Some(p)) => format!("Invalid value for '{p}'."),
                (_, None) => "The request has an invalid parameter.".to_owned(),
            };
            let error = ApiError::new(ErrorCode::InvalidRequest, say(&english));
            match param {
                Some(param) => error.param(param),
                None => error,
            }
        }
        1211 | 1221 | 1222 => ApiError::new(ErrorCode::ModelNotFound,
            say(&format!(
                "{the_model} does not exist or you do not have access to it."
            )),
        ),
        1220 => ApiError::new(ErrorCode::ModelNotPermitted,
            say(&format!(
                "{the_model} is not available to the gateway's Zhipu account."
            )),
        ),
        1230 | 1234 => ApiError::new(ErrorCode::UpstreamError,
            say("The upstream had an error while processing your request. You can retry your request."),
        ),
        1231 => ApiError::new(ErrorCode::DuplicateRequestId, say("The upstream refused a duplicate request id.")),
        1261 => ApiError::new(ErrorCode::ContextLengthExceeded, say(
            "This model's maximum context length was exceeded. Please reduce the length of the messages.",
        ))
        .param("messages"),
        1301 => ApiError::new(ErrorCode::ContentFilter, say(
            "Your request was rejected as a result of the upstream's safety system: the prompt or the answer may contain content that is not allowed.",
        )),
        1302 => rate_limited(ErrorCode::RateLimitExceeded,
            say("Rate limit reached for concurrent requests. Please try again in 1s."),
        )
        .retry_after(1),
        1303 => rate_limited(ErrorCode::RateLimitExceeded,
            say("Rate limit reached for requests. Please try again in 5s."),
        )
        .retry_after(5),
        1304 => rate_limited(ErrorCode::DailyQuotaExceeded,
            say("You exceeded the daily request quota for this model."),
        )
        .no_retry(),
        1305 => ApiError::new(ErrorCode::UpstreamOverloaded,
            say("That model is currently overloaded with other requests. You can retry your request."),
        )
        .retry_after(5),
        1308 | 1310 | 1313 => rate_limited(ErrorCode::UsageLimitReached,
            say("The usage limit of the gateway's Zhipu plan has been reached."),
        )
        .no_retry(),
        _ => return None,
    };
    Some(error)
}

/// What an error with an unknown code means, by the upstream's HTTP status.
fn generic(status: u16) -> &'static str {
    match status {
        400 => "The upstream refused the request as invalid.",
        401 => "The gateway's upstream credential was rejected by Zhipu.",
        403 => "The upstream refused access.",
        429 => "Rate limit reached for requests.",
        _ => "The upstream had an error while processing your request.",
    }
}

/// The fallback for unknown codes and bodies that are not Zhipu errors (Spring's 404 JSON,
/// HTML from a proxy, nothing). Never a 409: the OpenAI SDKs retry those.
fn by_status(status: u16, message: Option<String>) -> ApiError {
    let message = message
        .unwrap_or_else(|| format!("upstream answered HTTP {status} with an unexpected body"));
    match status {
        400 => ApiError::new(ErrorCode::InvalidRequest, message),
        401 => ApiError::new(ErrorCode::UpstreamAuthFailed, message).no_retry(),
        403 => ApiError::new(ErrorCode::UpstreamForbidden, message),
        // An unknown upstream path means the gateway is misconfigured; retrying cannot help.
        404 => ApiError::new(ErrorCode::UpstreamNotFound, message).no_retry(),
        429 => rate_limited(ErrorCode::RateLimitExceeded, message),
        _ => ApiError::new(ErrorCode::UpstreamError, message),
    }
}

fn rate_limited(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
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
