//! `POST /v1/images/generations`: one CogView call per image (`n` calls, a few at a time), each
//! image as its URL or, for `b64_json`, downloaded from the upstream's image host and encoded.
//! Edits and variations, which CogView does not offer, answer a clear 400.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine;
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use super::chat::authorize_model;
use super::json::OpenAiJson;
use crate::error::{ApiError, ApiResult};
use crate::keys::ApiKey;
use crate::openai::{image_item, image_url, ImagePlan, ImageRequest, DEFAULT_IMAGE_MODEL};
use crate::state::AppState;
use crate::usage::{Prompt, Tap, UsageTicket};

pub async fn generations(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    ticket: UsageTicket,
    OpenAiJson(request): OpenAiJson<ImageRequest>,
) -> ApiResult<Json<Value>> {
    let requested = request
        .model
        .clone()
        .unwrap_or_else(|| DEFAULT_IMAGE_MODEL.to_owned());
    let model = authorize_model(&state, &key, &ticket, &requested)?;
    let prompt = std::iter::once(request.prompt.as_str());
    ticket.set_prompt(Prompt::texts(prompt, ticket.keeps_text()));
    let plan = ImagePlan::new(request, &model, state.config.images.max_n)?;
    let images: Vec<ApiResult<Value>> =
        stream::iter((0..plan.count).map(|_| one_image(&state, &plan)))
            .buffered(state.config.images.concurrency)
            .collect()
            .await;
    // Every image the upstream made is billed, even when another call failed.
    let mut tap = Tap::new(false);
    tap.add_images(
        images
            .iter()
            .flatten()
            .count()
            .try_into()
            .unwrap_or(i64::MAX),
    );
    ticket.answered(tap);
    let data: Vec<Value> = images.into_iter().collect::<ApiResult<_>>()?;
    Ok(Json(
        json!({ "created": chrono::Utc::now().timestamp(), "data": data }),
    ))
}

async fn one_image(state: &AppState, plan: &ImagePlan) -> ApiResult<Value> {
    let upstream = state
        .zhipu
        .post_json("/images/generations", &plan.body, false);
    let answer = upstream.await?.json().await?;
    let url = image_url(&answer)?;
    let b64 = match plan.b64_json {
        true => {
            let bytes = state.zhipu.images.fetch(url).await?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        false => None,
    };
    Ok(image_item(url, b64))
}

/// `/v1/images/edits` and `/v1/images/variations`.
pub async fn unsupported(uri: axum::http::Uri) -> ApiError {
    let what = match uri.path().ends_with("edits") {
        true => "image edits",
        false => "image variations",
    };
    ApiError::invalid_request(format!(
        "CogView does not offer {what}; this gateway serves /v1/images/generations only."
    ))
    .code("unsupported_endpoint")
}
