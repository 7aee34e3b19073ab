//! The layer in front of `/v1`: a request without a valid key goes no further; one with a key
//! carries it on as an `Arc<ApiKey>` extension.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::KeyCache;
use crate::error::ApiError;

pub async fn require_api_key(
    State(keys): State<Arc<KeyCache>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|value| !value.is_empty());
    let Some(presented) = presented else {
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
