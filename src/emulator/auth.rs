//! Authentication as Zhipu does it: a raw `id.secret` bearer key, or an HS256 JWT signed with
//! the secret whose claims carry times in milliseconds. Failures are 401 with codes 1001-1003.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::errors::ZhipuError;

/// Below this a `timestamp`/`exp` is in seconds, which Zhipu rejects: its claims are in ms.
const MIN_MILLIS: i64 = 1_000_000_000_000;
/// How far in the future a token's `timestamp` may be before it is refused.
const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// One configured key, kept whole for raw-bearer matching and split for JWT checks.
#[derive(Debug, Clone)]
pub(crate) struct ApiKey {
    raw: String,
    id: String,
    secret: String,
}

impl ApiKey {
    /// Parses `id.secret`; a key without a dot can still match as a raw bearer token.
    pub(crate) fn parse(raw: &str) -> Self {
        let (id, secret) = raw.split_once('.').unwrap_or((raw, ""));
        Self {
            raw: raw.to_owned(),
            id: id.to_owned(),
            secret: secret.to_owned(),
        }
    }
}

/// Checks the `Authorization` header against `keys` at time `now_ms`.
pub(crate) fn check(keys: &[ApiKey], headers: &HeaderMap, now_ms: i64) -> Result<(), ZhipuError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ZhipuError::from_code(1001));
    };
    let value = value
        .to_str()
        .map_err(|_| ZhipuError::from_code(1002))?
        .trim();
    let (bearer, token) = match value.strip_prefix("Bearer ") {
        Some(rest) => (true, rest.trim()),
        None => (false, value),
    };
    if token.is_empty() {
        return Err(ZhipuError::from_code(1001));
    }
    if bearer && keys.iter().any(|key| key.raw == token) {
        return Ok(());
    }
    check_jwt(keys, token, now_ms)
}

/// The id of the upstream key an (already checked) `Authorization` header was made with: the
/// part of a raw key before the dot, or a token's `api_key` claim.
pub(crate) fn caller_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() == 3 {
        let claims = decode_json(parts[1])?;
        return claims.get("api_key")?.as_str().map(str::to_owned);
    }
    token.split_once('.').map(|(id, _)| id.to_owned())
}

fn check_jwt(keys: &[ApiKey], token: &str, now_ms: i64) -> Result<(), ZhipuError> {
    let invalid = || ZhipuError::from_code(1002);
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let header = decode_json(header).ok_or_else(invalid)?;
    if header.get("alg") != Some(&Value::from("HS256"))
        || header.get("sign_type") != Some(&Value::from("SIGN"))
    {
        return Err(invalid());
    }
    let claims = decode_json(payload).ok_or_else(invalid)?;
    let id = claims
        .get("api_key")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let key = keys
        .iter()
        .find(|key| key.id == id && !key.secret.is_empty())
        .ok_or_else(invalid)?;
    let message = &token[..header_payload_len(token)];
    let decoding = DecodingKey::from_secret(key.secret.as_bytes());
    let signed =
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &decoding, Algorithm::HS256);
    if !matches!(signed, Ok(true)) {
        return Err(invalid());
    }
    check_times(&claims, now_ms)
}

/// The byte length of `header.payload`, the part the signature covers.
fn header_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn check_times(claims: &Value, now_ms: i64) -> Result<(), ZhipuError> {
    let invalid = || ZhipuError::from_code(1002);
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(invalid)?;
    let timestamp = claims
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or_else(invalid)?;
    if exp < MIN_MILLIS || timestamp < MIN_MILLIS || timestamp > now_ms + MAX_CLOCK_SKEW_MS {
        return Err(invalid());
    }
    if exp <= now_ms {
        return Err(ZhipuError::from_code(1003));
    }
    Ok(())
}

/// Decodes one unpadded base64url JWT segment holding a JSON object.
fn decode_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_expiry_are_told_apart() {
        let now = 1_700_000_000_000;
        let claims = |exp: i64, ts: i64| serde_json::json!({"exp": exp, "timestamp": ts});
        assert!(check_times(&claims(now + 1000, now), now).is_ok());
        assert_eq!(
            check_times(&claims(now / 1000 + 60, now), now).map_err(|e| e.code),
            Err(1002)
        );
        assert_eq!(
            check_times(&claims(now, now - 1), now).map_err(|e| e.code),
            Err(1003)
        );
        let future = now + MAX_CLOCK_SKEW_MS + 1;
        assert_eq!(
            check_times(&claims(future + 1, future), now).map_err(|e| e.code),
            Err(1002)
        );
    }
}
