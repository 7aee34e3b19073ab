//! `POST /v1/chat/completions`, plain and streamed.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value};

use super::json::OpenAiJson;
use super::RequestId;
use crate::error::{ApiError, ApiResult};
use crate::keys::ApiKey;
use crate::openai::{from_glm, to_glm, ChatCompletionRequest};
use crate::relay::{relay_sse, RelayOptions};
use crate::state::AppState;
use crate::usage::{AnswerUsage, TokenUsage, UsageTicket, MAX_CONTENT_BYTES};

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(ticket): Extension<Arc<UsageTicket>>,
    OpenAiJson(request): OpenAiJson<ChatCompletionRequest>,
) -> ApiResult<Response> {
    let upstream_model = authorize_model(&state, &key, &ticket, &request.model)?;
    let glm = to_glm(request, &upstream_model, &request_id)?;
    let estimate = state.limits.estimate(&upstream_model, &glm.body);
    let admission = state.limits.admit(&request_id, &key, estimate).await?;
    let messages = glm.body.get("messages");
    ticket.set_prompt(messages.map_or(0, text_chars), || {
        messages.map(Value::to_string).unwrap_or_default()
    });
    let body = serde_json::to_vec(&glm.body).map_err(|e| ApiError::internal(&e))?;
    let upstream = state
        .zhipu
        .post("/chat/completions", body, glm.stream)
        .await?;
    if glm.stream {
        let upstream = upstream.expect_event_stream().await?;
        let ticket = ticket.claim();
        let options = RelayOptions {
            include_usage: glm.include_usage,
            drain_timeout: state.config.usage.drain_timeout,
            hard_stop: state.hard_stop.clone(),
            keep_text: state.ledger.stores_content().then_some(MAX_CONTENT_BYTES),
        };
        let mut response = relay_sse(upstream, options, &state.tasks, move |outcome| {
            ticket.finish_stream(&outcome)
        });
        admission.apply_headers(response.headers_mut());
        return Ok(response);
    }
    let bytes = upstream.bytes().await?;
    let answer = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::bad_gateway(
            "upstream_error",
            "The upstream answered with a body that is not JSON.",
        )
    })?;
    let answer = from_glm(answer)?;
    let usage = AnswerUsage {
        tokens: answer.get("usage").and_then(TokenUsage::from_value),
        completion_chars: answer_chars(&answer),
        images: 0,
        completion_text: state
            .ledger
            .stores_content()
            .then(|| completion_text(&answer)),
    };
    let mut response = Json(answer).into_response();
    response.extensions_mut().insert(usage);
    admission.apply_headers(response.headers_mut());
    Ok(response)
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

/// Characters of text in messages (string contents and text parts), for usage estimates.
fn text_chars(messages: &Value) -> usize {
    let Some(messages) = messages.as_array() else {
        return 0;
    };
    messages
        .iter()
        .map(|message| match message.get("content") {
            Some(Value::String(text)) => text.chars().count(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .map(|text| text.chars().count())
                .sum(),
            _ => 0,
        })
        .sum()
}

/// Characters of the answer's text, reasoning and tool-call arguments, for usage estimates.
fn answer_chars(answer: &Value) -> usize {
    let Some(message) = answer.pointer("/choices/0/message") else {
        return 0;
    };
    let text = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_str)
            .map_or(0, |t| t.chars().count())
    };
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map_or(0, |calls| {
            calls
                .iter()
                .filter_map(|call| call.pointer("/function/arguments").and_then(Value::as_str))
                .map(|arguments| arguments.chars().count())
                .sum()
        });
    text("content") + text("reasoning_content") + calls
}

/// The answer's text, and its tool calls, as stored with `store_content`.
fn completion_text(answer: &Value) -> String {
    let message = answer
        .pointer("/choices/0/message")
        .and_then(Value::as_object);
    let content = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match message.and_then(|m| m.get("tool_calls")) {
        Some(calls) if !calls.is_null() => {
            let mut stored = Map::new();
            stored.insert("content".into(), Value::from(content));
            stored.insert("tool_calls".into(), calls.clone());
            Value::Object(stored).to_string()
        }
        _ => content.to_owned(),
    }
}
