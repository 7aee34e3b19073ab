//! `OpenAiPath<T>`: axum's `Path` whose rejections (a segment that is not UTF-8, a wrong type)
//! are OpenAI-shaped 400s instead of plain text.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

pub struct OpenAiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for OpenAiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                ErrorCode::InvalidPath,
                format!("The request path is not valid: {}", rejection.body_text()),
            )),
        }
    }
}
