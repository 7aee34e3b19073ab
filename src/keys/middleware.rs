//! The layer in front of `/v1`: a request without a valid key goes no further; one with a key
//! carries it on as an `Arc<ApiKey>` extension.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::KeyCache;
use crate::error::{ApiError, ErrorCode};

pub async fn require_api_key(
    State(keys): State<Arc<KeyCache>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = bearer_token(request.headers()) else {
        return ApiError::new(
            ErrorCode::MissingApiKey,
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
        )
        .into_response();
    };
    match keys.authenticate(presented).await {
        Ok(key) => {
            request.extensions_mut().insert(key);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is a non-empty one. As
/// RFC 9110 has it, the scheme is case-insensitive and any run of spaces or tabs separates it
/// from the token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let split = value.find([' ', '\t'])?;
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(rest.trim_start_matches([' ', '\t'])).filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn token_of(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).ok()?);
        bearer_token(&headers).map(str::to_owned)
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_any_blanks_separate_it() {
        for value in [
            "Bearer sk-glm-a-b",
            "bearer sk-glm-a-b",
            "BEARER sk-glm-a-b",
            "BeArEr sk-glm-a-b",
            "Bearer   sk-glm-a-b",
            "Bearer\tsk-glm-a-b",
            "Bearer \t sk-glm-a-b ",
        ] {
            assert_eq!(token_of(value).as_deref(), Some("sk-glm-a-b"), "{value:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_no_token() {
        for value in [
            "Basic abc",
            "Bearer",
            "Bearer   ",
            "sk-glm-a-b",
            "Bearersk-glm-a-b",
            "",
        ] {
            assert_eq!(token_of(value), None, "{value:?}");
        }
    }
}
