//! When an upstream call that failed before its answer began is tried again, and how: which
//! failures qualify (and whether the same key may serve the retry), the backoff, and the body
//! of the retry (a fresh `request_id`, which Zhipu requires to be unique, and perhaps another
//! model).

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

use super::pool::zhipu_code;

/// The first retry waits about this long; each next one twice as long.
const BACKOFF_BASE_MS: u64 = 50;
const BACKOFF_MAX_MS: u64 = 2_000;

/// Why an attempt failed in a way worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// No connection to the upstream.
    Connect,
    /// A stream's first byte did not come in time.
    FirstByte,
    /// Zhipu 1302, 1303, 1305: the key is rate-limited or the model overloaded.
    RateLimited,
    /// Zhipu 1113: this key has no balance; another may.
    Balance,
    /// HTTP 401 or Zhipu 1000–1004: this key is rejected.
    Unauthorized,
    /// Any other 5xx.
    ServerError,
}

impl Retry {
    /// The `reason` label of `glm_gateway_upstream_retries_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::FirstByte => "first_byte_timeout",
            Self::RateLimited => "rate_limited",
            Self::Balance => "balance",
            Self::Unauthorized => "unauthorized",
            Self::ServerError => "server_error",
        }
    }

    /// Whether the key that failed may serve the retry when no other key is usable: not when
    /// the failure was the key's (rate limit, balance, rejection) nor a silent stream, which
    /// the same key would likely repeat.
    pub fn same_key_ok(self) -> bool {
        matches!(self, Self::Connect | Self::ServerError)
    }
}

/// Whether an error answer (HTTP status and body) is worth another attempt. Other 4xx answers
/// (a bad request, a quota for the day) are final.
pub fn classify(status: u16, body: &[u8]) -> Option<Retry> {
    if status == 401 {
        return Some(Retry::Unauthorized);
    }
    match zhipu_code(body) {
        Some(1000..=1004) => Some(Retry::Unauthorized),
        Some(1113) => Some(Retry::Balance),
        Some(1302 | 1303 | 1305) => Some(Retry::RateLimited),
        _ if status >= 500 => Some(Retry::ServerError),
        _ => None,
    }
}

/// The wait before retry number `n` (0 for the first): 50 ms · 2^n, capped at 2 s, less up to
/// half of it at random so that callers failing together do not retry together.
pub fn backoff(n: u32) -> Duration {
    let full = BACKOFF_BASE_MS
        .saturating_mul(1 << n.min(16))
        .min(BACKOFF_MAX_MS);
    Duration::from_millis(rand::thread_rng().gen_range(full / 2..=full))
}

/// The body of a retry: the JSON object with its `request_id` (if it has one) replaced by a
/// new one, and its `model` replaced by `model` if given. A body that is not a JSON object is
/// sent again as it is.
pub fn retry_body(body: &Bytes, model: Option<&str>) -> Bytes {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return body.clone();
    };
    if object.contains_key("request_id") {
        let id = uuid::Uuid::now_v7().simple().to_string();
        object.insert("request_id".into(), Value::String(id));
    }
    if let Some(model) = model {
        object.insert("model".into(), Value::String(model.to_owned()));
    }
    serde_json::to_vec(&object).map_or_else(|_| body.clone(), Bytes::from)
}

/// The `model` of a JSON request body, read without building the whole document.
pub fn body_model(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        model: Option<String>,
    }
    serde_json::from_slice::<Peek>(body).ok()?.model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_rate_server_and_connection_failures_are_retried() {
        let code = |c: &str| format!(r#"{{"error":{{"code":"{c}","message":"x"}}}}"#);
        assert_eq!(
            classify(429, code("1302").as_bytes()),
            Some(Retry::RateLimited)
        );
        assert_eq!(
            classify(429, code("1305").as_bytes()),
            Some(Retry::RateLimited)
        );
        assert_eq!(classify(429, code("1113").as_bytes()), Some(Retry::Balance));
        assert_eq!(classify(401, b""), Some(Retry::Unauthorized));
        assert_eq!(classify(500, b"<html>"), Some(Retry::ServerError));
        assert_eq!(classify(503, b""), Some(Retry::ServerError));
        assert_eq!(classify(429, code("1304").as_bytes()), None);
        assert_eq!(classify(400, code("1214").as_bytes()), None);
        assert_eq!(classify(404, b""), None);
        assert!(Retry::ServerError.same_key_ok() && Retry::Connect.same_key_ok());
        assert!(!Retry::RateLimited.same_key_ok() && !Retry::Balance.same_key_ok());
        assert!(!Retry::FirstByte.same_key_ok());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for n in 0..20 {
            let wait = backoff(n).as_millis() as u64;
            let full = (50u64 << n.min(16)).min(2_000);
            assert!(wait >= full / 2 && wait <= full, "{n}: {wait}");
        }
    }

    #[test]
    fn a_retry_body_has_a_new_request_id_and_maybe_another_model() {
        let body = Bytes::from_static(br#"{"model":"glm-4.7","request_id":"abc","stream":true}"#);
        let again: Value = serde_json::from_slice(&retry_body(&body, None)).unwrap();
        let id = again["request_id"].as_str().unwrap();
        assert!(id != "abc" && id.len() == 32, "{id}");
        assert_eq!(again["model"], "glm-4.7");
        assert_eq!(again["stream"], true);
        let other: Value =
            serde_json::from_slice(&retry_body(&body, Some("glm-4.7-flash"))).unwrap();
        assert_eq!(other["model"], "glm-4.7-flash");
        assert_ne!(other["request_id"], again["request_id"]);
        let plain = Bytes::from_static(br#"{"model":"m"}"#);
        let again: Value = serde_json::from_slice(&retry_body(&plain, None)).unwrap();
        assert!(again.get("request_id").is_none());
        let not_json = Bytes::from_static(b"x");
        assert_eq!(retry_body(&not_json, Some("m")), not_json);
        assert_eq!(body_model(&body).as_deref(), Some("glm-4.7"));
        assert_eq!(body_model(b"[1]"), None);
    }
}
