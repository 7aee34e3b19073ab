//! `GET /v1/models` and `/v1/models/{id}`: what a client may send with this key, in OpenAI's
//! list shape. Zhipu has no model-list endpoint, so the list comes from the model map and the
//! configured catalogue.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::path::OpenAiPath;
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::keys::ApiKey;
use crate::state::AppState;

/// Models carry one fixed `created` (2024-01-01), since Zhipu publishes none.
const CREATED: i64 = 1_704_067_200;

pub async fn list_models(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
) -> Json<Value> {
    let data: Vec<Value> = visible_models(&state.config, &key)
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
    if may_send(&state.config, &key, &id) {
        Ok(Json(model_object(&id)))
    } else {
        Err(ApiError::new(
            ErrorCode::ModelNotFound,
            format!("The model `{id}` does not exist or you do not have access to it."),
        )
        .param("model"))
    }
}

/// The common OpenAI ids the map resolves, the configured exact aliases, every model the map
/// points at, the GLM catalogue and the key's own concrete allowlist entries; each only if the
/// key may use it.
fn visible_models<'a>(config: &'a Config, key: &'a ApiKey) -> BTreeSet<&'a str> {
    let models = &config.models;
    let allowlisted = key
        .models
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|name| !name.ends_with('*'));
    Catalogue::builtin()
        .common_openai_models()
        .iter()
        .map(String::as_str)
        .filter(|name| models.maps(name))
        .chain(models.aliases())
        .chain(models.targets())
        .chain(config.listed_models.iter().map(String::as_str))
        .chain(allowlisted)
        .filter(|name| key.allows_model(name, models.resolve(name)))
        .collect()
}

/// Whether `id` names a model this key may send: one the map resolves, one listed, or one the
/// key's allowlist names or prefixes; and in every case one the allowlist admits.
fn may_send(config: &Config, key: &ApiKey, id: &str) -> bool {
    let models = &config.models;
    if !key.allows_model(id, models.resolve(id)) {
        return false;
    }
    models.maps(id)
        || key.models.as_ref().is_some_and(|allowed| {
            allowed
                .iter()
                .any(|pattern| crate::keys::model_matches(pattern, id))
        })
        || visible_models(config, key).contains(id)
}

fn model_object(id: &str) -> Value {
    json!({ "id": id, "object": "model", "created": CREATED, "owned_by": "zhipuai" })
}
