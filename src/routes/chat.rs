//! `POST /v1/chat/completions`, plain and streamed.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::json::OpenAiJson;
use crate::error::{ApiError, ApiResult};
use crate::keys::ApiKey;
use crate::openai::{from_glm, to_glm, ChatCompletionRequest};
use crate::relay::relay_sse;
use crate::state::AppState;
use crate::usage::{Prompt, Tap, UsageTicket};

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    ticket: UsageTicket,
    OpenAiJson(request): OpenAiJson<ChatCompletionRequest>,
) -> ApiResult<Response> {
    let model = authorize_model(&state, &key, &ticket, &request.model)?;
    let glm = to_glm(request, &model, ticket.request_id())?;
    ticket.set_prompt(Prompt::chat(glm.body.get("messages"), ticket.keeps_text()));
    let upstream = state
        .zhipu
        .post_json("/chat/completions", &glm.body, glm.stream);
    if glm.stream {
        let upstream = upstream.await?.expect_event_stream().await?;
        let options = state.relay_options(glm.include_usage);
        let translator = options.chat();
        return Ok(relay_sse(
            upstream,
            translator,
            options,
            &state.tasks,
            &ticket,
        ));
    }
    let answer = from_glm(upstream.await?.json().await?)?;
    let mut tap = Tap::new(ticket.keeps_text());
    tap.chat_answer(&answer);
    ticket.answered(tap);
    Ok(Json(answer).into_response())
}

/// Resolves the model the client named, notes both names for the row, and checks the key may
/// use it.
pub fn authorize_model(
    state: &AppState,
    key: &ApiKey,
    ticket: &UsageTicket,
    requested: &str,
) -> ApiResult<String> {
    if requested.trim().is_empty() {
        return Err(
            ApiError::invalid_request("You must provide a model parameter.").param("model"),
        );
    }
    let upstream = state.config.models.resolve(requested);
    ticket.set_models(requested, upstream);
    if !key.allows_model(requested, upstream) {
        return Err(ApiError::forbidden(
            "model_not_allowed",
            format!("This API key may not use the model `{requested}`."),
        )
        .param("model"));
    }
    Ok(upstream.to_owned())
}
