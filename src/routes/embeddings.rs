//! `POST /v1/embeddings`: inputs past Zhipu's per-call limit go out as several calls, run a few
//! at a time and joined back in order, their usage summed.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use futures_util::{stream, StreamExt};
use serde_json::Value;

use super::authorize::{admit, authorize_model, Spend};
use super::json::OpenAiJson;
use crate::error::ApiResult;
use crate::keys::ApiKey;
use crate::openai::{EmbeddingPlan, EmbeddingRequest};
use crate::state::AppState;
use crate::usage::{Prompt, Tap, TokenUsage, UsageTicket};

pub async fn embeddings(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    ticket: UsageTicket,
    OpenAiJson(request): OpenAiJson<EmbeddingRequest>,
) -> ApiResult<Json<Value>> {
    let model = authorize_model(&state, &key, &ticket, &request.model)?;
    let plan = EmbeddingPlan::new(request, &model)?;
    let texts = plan.inputs.iter().map(String::as_str);
    let prompt = Prompt::texts(texts, ticket.keeps_text());
    admit(
        &state,
        &key,
        &ticket,
        &model,
        Spend::tokens(prompt, Some(0)),
    )
    .await?;
    let calls = plan.batches().map(|body| call(&state, body));
    let answers: Vec<ApiResult<Value>> = stream::iter(calls)
        .buffered(state.config.embeddings.concurrency)
        .collect()
        .await;
    // Every call that answered is billed, even when another failed: the row counts them all.
    let mut tap = Tap::new(false);
    for answer in answers.iter().flatten() {
        tap.add_tokens(
            answer
                .get("usage")
                .and_then(TokenUsage::from_value)
                .unwrap_or_default(),
        );
    }
    ticket.answered(tap);
    let answers: Vec<Value> = answers.into_iter().collect::<ApiResult<_>>()?;
    Ok(Json(plan.respond(&answers)?))
}

async fn call(state: &AppState, body: Value) -> ApiResult<Value> {
    state
        .zhipu
        .post_json("/embeddings", &body, false)
        .await?
        .json()
        .await
}
