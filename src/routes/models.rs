//! `GET /v1/models` and `/v1/models/{id}`: the aliases and GLM models a key may use, in
//! OpenAI's list shape. Zhipu has no model-list endpoint, so the list comes from configuration.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::path::OpenAiPath;
use crate::error::{ApiError, ApiResult};
use crate::keys::ApiKey;
use crate::state::AppState;

/// Models carry one fixed `created` (2024-01-01), since Zhipu publishes none.
const CREATED: i64 = 1_704_067_200;

pub async fn list_models(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
) -> Json<Value> {
    let data: Vec<Value> = visible_models(&state, &key)
        .into_iter()
        .map(model_object)
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

pub async fn retrieve_model(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    OpenAiPath(id): OpenAiPath<String>,
) -> ApiResult<Json<Value>> {
    if visible_models(&state, &key).contains(id.as_str()) {
        Ok(Json(model_object(&id)))
    } else {
        Err(ApiError::not_found(
            "model_not_found",
            format!("The model `{id}` does not exist or you do not have access to it."),
        )
        .param("model"))
    }
}

fn visible_models<'a>(state: &'a AppState, key: &ApiKey) -> BTreeSet<&'a str> {
    let models = &state.config.models;
    models
        .aliases()
        .chain(models.targets())
        .chain(state.config.catalogue.iter().map(String::as_str))
        .filter(|name| key.allows_model(name, models.resolve(name)))
        .collect()
}

fn model_object(id: &str) -> Value {
    json!({ "id": id, "object": "model", "created": CREATED, "owned_by": "zhipuai" })
}
