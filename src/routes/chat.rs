//! `POST /v1/chat/completions`, plain and streamed.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use super::authorize::{admit, authorize_model, Spend};
use super::json::OpenAiJson;
use super::promise::{checked_answer, mark, Checked};
use crate::config::EmulationSwitches;
use crate::error::ApiResult;
use crate::keys::ApiKey;
use crate::openai::{from_glm, to_glm, ChatCompletionRequest, GlmChatRequest};
use crate::relay::relay_sse;
use crate::state::AppState;
use crate::upstream::zhipu_error::name_the_model;
use crate::upstream::UpstreamResponse;
use crate::usage::{Prompt, Tap, TokenUsage, UsageTicket};

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    ticket: UsageTicket,
    OpenAiJson(request): OpenAiJson<ChatCompletionRequest>,
) -> ApiResult<Response> {
    let model = authorize_model(&state, &key, &ticket, &request.model)?;
    let requested = request.model.clone();
    let named = |error| name_the_model(error, &requested);
    let mut glm = to_glm(request, &model, ticket.request_id())?;
    let switches = glm.settle_emulation(&state.config.emulation);
    let prompt = Prompt::chat(glm.body.get("messages"), ticket.keeps_text());
    let completion = glm.body.get("max_tokens").and_then(Value::as_i64);
    let spend = Spend::tokens(prompt, completion);
    let admission = admit(&state, &key, &ticket, &model, spend).await?;
    let upstream = state
        .zhipu
        .post_json("/chat/completions", &glm.body, glm.stream);
    let (mut response, checked) = if glm.stream {
        let upstream = upstream.await.map_err(named)?.expect_event_stream().await?;
        let options = state.relay_options(glm.include_usage);
        let translator = options.chat();
        let relayed = relay_sse(upstream, translator, options, &state.tasks, &ticket);
        (relayed, None)
    } else {
        let upstream = upstream.await.map_err(named)?;
        plain_answer(&state, &glm, switches, upstream, &ticket).await?
    };
    if let Some(promise) = &glm.emulation {
        mark(&mut response, &ticket, promise, checked);
    }
    admission.apply_headers(response.headers_mut());
    Ok(response)
}

/// A whole answer, translated, checked against an emulated promise, and tapped for the row.
async fn plain_answer(
    state: &AppState,
    glm: &GlmChatRequest,
    switches: EmulationSwitches,
    upstream: UpstreamResponse,
    ticket: &UsageTicket,
) -> ApiResult<(Response, Option<Checked>)> {
    let answer = from_glm(upstream.json().await?)?;
    let mut tap = Tap::new(ticket.keeps_text());
    tap.chat_answer(&answer);
    let repair = |body: Map<String, Value>| async move {
        let upstream = state.zhipu.post_json("/chat/completions", &body, false);
        let answer = from_glm(upstream.await?.json().await?)?;
        let usage = answer.get("usage").and_then(TokenUsage::from_value);
        Ok((answer, usage))
    };
    let promise = glm.emulation.as_ref();
    let (answer, checked) =
        checked_answer(promise, &glm.body, answer, switches, tap, ticket, repair).await?;
    Ok((Json(answer).into_response(), checked))
}
