//! The layer in front of `/v1`: a request without a valid key goes no further; one with a key
//! carries it on as an `Arc<ApiKey>` extension.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::KeyCache;
use crate::error::ApiError;

pub async fn require_api_key(
    State(keys): State<Arc<KeyCache>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(presented) = bearer_token(request.headers()) else {
        return ApiError::unauthorized(
            "missing_api_key",
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
        )
        .into_response();
    };
    match keys.authenticate(presented) {
        Ok(key) => {
            request.extensions_mut().insert(key);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is a non-empty one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim()).filter(|token| !token.is_empty())
}
