//! One upstream Zhipu key and the `Authorization` value it yields: the raw key in `bearer`
//! mode, or an HS256 token in `jwt` mode, signed once and reused until shortly before it expires.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::config::{AuthMode, Secret};

/// Tokens live 30 minutes and are replaced once less than 5 remain, so a token in flight never
/// expires on the way and signing happens twice an hour, not per request.
const TOKEN_TTL_MS: i64 = 30 * 60 * 1000;
const RENEW_BEFORE_MS: i64 = 5 * 60 * 1000;

pub struct Credential {
    id: String,
    secret: Secret,
    raw: Secret,
    mode: AuthMode,
    token: ArcSwapOption<CachedToken>,
}

struct CachedToken {
    header: HeaderValue,
    renew_at_ms: i64,
}

impl Credential {
    /// `key` is `id.secret`, already validated by the configuration.
    pub fn new(key: &Secret, mode: AuthMode) -> Self {
        let (id, secret) = key.expose().split_once('.').unwrap_or((key.expose(), ""));
        Self {
            id: id.to_owned(),
            secret: Secret::new(secret),
            raw: key.clone(),
            mode,
            token: ArcSwapOption::empty(),
        }
    }

    /// The key's id: the part before the dot, which is not secret.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The value of the upstream `Authorization` header at `now_ms`.
    pub fn authorization(&self, now_ms: i64) -> Result<HeaderValue, jsonwebtoken::errors::Error> {
        match self.mode {
            AuthMode::Bearer => Ok(sensitive(format!("Bearer {}", self.raw.expose()))),
            AuthMode::Jwt => {
                if let Some(token) = self.token.load().as_ref() {
                    if now_ms < token.renew_at_ms {
                        return Ok(token.header.clone());
                    }
                }
                let jwt = sign(&self.id, self.secret.expose(), now_ms, TOKEN_TTL_MS)?;
                let header = sensitive(format!("Bearer {jwt}"));
                let renew_at_ms = now_ms + TOKEN_TTL_MS - RENEW_BEFORE_MS;
                self.token.store(Some(Arc::new(CachedToken {
                    header: header.clone(),
                    renew_at_ms,
                })));
                Ok(header)
            }
        }
    }
}

fn sensitive(value: String) -> HeaderValue {
    // Keys and tokens are base64url and ASCII; a key that is not would fail config validation.
    let mut header =
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    header.set_sensitive(true);
    header
}

/// Zhipu's token: header `{"alg":"HS256","sign_type":"SIGN"}` (a field `jsonwebtoken::Header`
/// cannot carry, hence built by hand) and claims `api_key`, `exp`, `timestamp`, both times in
/// milliseconds, not the standard seconds.
pub fn sign(
    id: &str,
    secret: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","sign_type":"SIGN"}"#);
    let claims = serde_json::json!({ "api_key": id, "exp": now_ms + ttl_ms, "timestamp": now_ms });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )?;
    Ok(format!("{message}.{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_header_and_claims() {
        let token = sign("myid", "mysecret", 1_700_000_000_000, 600_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "HS256", "sign_type": "SIGN"})
        );
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"api_key": "myid", "exp": 1_700_000_600_000_i64, "timestamp": 1_700_000_000_000_i64})
        );
        let message = format!("{}.{}", parts[0], parts[1]);
        let key = jsonwebtoken::DecodingKey::from_secret(b"mysecret");
        assert!(
            jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &key, Algorithm::HS256)
                .unwrap()
        );
        let wrong = jsonwebtoken::DecodingKey::from_secret(b"other");
        assert!(!jsonwebtoken::crypto::verify(
            parts[2],
            message.as_bytes(),
            &wrong,
            Algorithm::HS256
        )
        .unwrap());
    }

    #[test]
    fn jwt_tokens_are_cached_and_renewed_before_expiry() {
        let credential = Credential::new(&Secret::new("myid.mysecret"), AuthMode::Jwt);
        let first = credential.authorization(1_000_000).unwrap();
        let later = credential
            .authorization(1_000_000 + TOKEN_TTL_MS - RENEW_BEFORE_MS - 1)
            .unwrap();
        assert_eq!(first, later, "a cached token is reused");
        let renewed = credential
            .authorization(1_000_000 + TOKEN_TTL_MS - RENEW_BEFORE_MS)
            .unwrap();
        assert_ne!(first, renewed, "a token near expiry is replaced");
        assert!(first.is_sensitive());
    }

    #[test]
    fn bearer_mode_sends_the_raw_key() {
        let credential = Credential::new(&Secret::new("myid.mysecret"), AuthMode::Bearer);
        assert_eq!(credential.authorization(0).unwrap(), "Bearer myid.mysecret");
    }
}
