//! `/admin/keys`: key management for operators, behind `GLM_GATEWAY_ADMIN_TOKEN`. Without a
//! configured token every admin request is refused.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::json::OpenAiJson;
use crate::error::{ApiError, ApiResult};
use crate::keys::admin::{create_key, CreateKey, KeyView};
use crate::keys::{bearer_token, ApiKey};
use crate::state::AppState;

pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = match (&state.config.admin_token, bearer_token(request.headers())) {
        (Some(token), Some(presented)) => {
            bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    };
    if allowed {
        next.run(request).await
    } else {
        ApiError::unauthorized(
            "invalid_admin_token",
            "The admin API needs `Authorization: Bearer <GLM_GATEWAY_ADMIN_TOKEN>`.",
        )
        .into_response()
    }
}

pub async fn create(
    State(state): State<AppState>,
    OpenAiJson(request): OpenAiJson<CreateKey>,
) -> ApiResult<Response> {
    let (created, key) = create_key(&state.db, request).await?;
    state.keys.insert(key);
    tracing::info!(key_id = %created.view.id, team = %created.view.team, "key created");
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let records = state
        .db
        .list_keys()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let data: Vec<KeyView> = records.iter().map(KeyView::from).collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyView>> {
    let record = state
        .db
        .revoke_key(&id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let record = record.ok_or_else(|| {
        ApiError::not_found("key_not_found", format!("No key has the id `{id}`."))
    })?;
    if let Some(key) = ApiKey::from_record(&record) {
        state.keys.insert(key);
    }
    tracing::info!(key_id = %id, "key revoked");
    Ok(Json(KeyView::from(&record)))
}
