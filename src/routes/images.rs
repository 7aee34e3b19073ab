//! `POST /v1/images/generations`: one CogView call per image (`n` calls, a few at a time), each
//! image as its URL or, for `b64_json`, downloaded from the upstream's image host and encoded.
//! Edits and variations, which CogView does not offer, answer a clear 400.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine;
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use super::authorize::{admit, authorize_model, Spend};
use super::json::OpenAiJson;
use crate::error::{ApiError, ApiResult, ErrorCode};
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
    let prompt = Prompt::texts(
        std::iter::once(request.prompt.as_str()),
        ticket.keeps_text(),
    );
    let plan = ImagePlan::new(request, &model, state.config.images.max_n)?;
    admit(
        &state,
        &key,
        &ticket,
        &model,
        Spend::images(prompt, plan.count),
    )
    .await?;
    let calls = (0..plan.count).map(|_| one_image(&state, &plan));
    let images: Vec<Made> = stream::iter(calls)
        .buffered(state.config.images.concurrency)
        .collect()
        .await;
    // Every image the upstream made is billed, even when its download or another call failed.
    let mut tap = Tap::new(false);
    let made = images.iter().filter(|image| image.made).count();
    tap.add_images(i64::try_from(made).unwrap_or(i64::MAX));
    ticket.answered(tap);
    let data: Vec<Value> = images
        .into_iter()
        .map(|image| image.item)
        .collect::<ApiResult<_>>()?;
    Ok(Json(
        json!({ "created": chrono::Utc::now().timestamp(), "data": data }),
    ))
}

/// One upstream call's outcome: whether the upstream made (and bills) an image, and the
/// answer's item or why there is none.
struct Made {
    made: bool,
    item: ApiResult<Value>,
}

async fn one_image(state: &AppState, plan: &ImagePlan) -> Made {
    let upstream = state
        .zhipu
        .post_json("/images/generations", &plan.body, false);
    let answer = match upstream.await {
        Ok(upstream) => upstream.json().await,
        Err(error) => Err(error),
    };
    let url = match answer.as_ref().map_err(Clone::clone).and_then(image_url) {
        Ok(url) => url,
        Err(error) => {
            return Made {
                made: false,
                item: Err(error),
            }
        }
    };
    let item = match plan.b64_json {
        true => state.zhipu.images.fetch(url).await.map(|bytes| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            image_item(url, Some(b64))
        }),
        false => Ok(image_item(url, None)),
    };
    Made { made: true, item }
}

/// `/v1/images/edits` and `/v1/images/variations`.
pub async fn unsupported(uri: axum::http::Uri) -> ApiError {
    let what = match uri.path().ends_with("edits") {
        true => "image edits",
        false => "image variations",
    };
    ApiError::new(
        ErrorCode::UnsupportedEndpoint,
        format!("CogView does not offer {what}; this gateway serves /v1/images/generations only."),
    )
}
