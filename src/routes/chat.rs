//! `POST /v1/chat/completions`, plain and streamed.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::json::OpenAiJson;
use super::RequestId;
use crate::error::{ApiError, ApiResult};
use crate::keys::ApiKey;
use crate::openai::{from_glm, to_glm, ChatCompletionRequest};
use crate::relay::relay_sse;
use crate::state::AppState;

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    OpenAiJson(request): OpenAiJson<ChatCompletionRequest>,
) -> ApiResult<Response> {
    let upstream_model = authorize_model(&state, &key, &request.model)?;
    let glm = to_glm(request, &upstream_model, &request_id)?;
    let body = serde_json::to_vec(&glm.body).map_err(|e| ApiError::internal(&e))?;
    let upstream = state.zhipu.post("/chat/completions", body).await?;
    if glm.stream {
        let upstream = upstream.expect_event_stream().await?;
        return Ok(relay_sse(
            upstream,
            glm.include_usage,
            &state.tasks,
            |_outcome| {},
        ));
    }
    let bytes = upstream.bytes().await?;
    let answer = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::bad_gateway(
            "upstream_error",
            "The upstream answered with a body that is not JSON.",
        )
    })?;
    Ok(Json(from_glm(answer)?).into_response())
}

/// Resolves the model the client named and checks the key may use it.
pub fn authorize_model(state: &AppState, key: &ApiKey, requested: &str) -> ApiResult<String> {
    if requested.trim().is_empty() {
        return Err(
            ApiError::invalid_request("You must provide a model parameter.").param("model"),
        );
    }
    let upstream = state.config.models.resolve(requested);
    if !key.allows_model(requested, upstream) {
        return Err(ApiError::forbidden(
            "model_not_allowed",
            format!("This API key may not use the model `{requested}`."),
        )
        .param("model"));
    }
    Ok(upstream.to_owned())
}
