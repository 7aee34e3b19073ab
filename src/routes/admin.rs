//! `/admin/keys`: key management for operators, behind `GLM_GATEWAY_ADMIN_TOKEN`. Without a
//! configured token every admin request is refused.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::json::OpenAiJson;
use super::path::OpenAiPath;
use crate::error::{ApiError, ApiResult};
use crate::keys::admin::{create_key, no_control_characters, CreateKey, KeyView};
use crate::keys::{bearer_token, ApiKey};
use crate::state::AppState;
use crate::store::{parse_day, UsageGroup};

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
    OpenAiPath(id): OpenAiPath<String>,
) -> ApiResult<Json<KeyView>> {
    no_control_characters("id", &id)?;
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

/// `GET /admin/usage?by=team|key|model&since=YYYY-MM-DD&until=YYYY-MM-DD`
pub async fn usage(
    State(state): State<AppState>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid_request(format!("Invalid query: {e}")))?;
    let by = match query.by.as_deref() {
        None => UsageGroup::Team,
        Some(by) => by.parse().map_err(|_| {
            ApiError::invalid_request("`by` must be team, key or model.").param("by")
        })?,
    };
    let day = |field, value: &Option<String>| {
        parse_day(field, value.as_deref())
            .map_err(|message| ApiError::invalid_request(message).param(field))
    };
    let (since, until) = (day("since", &query.since)?, day("until", &query.until)?);
    let data = state
        .db
        .usage_summary(by, since, until)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "object": "list", "data": data })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    by: Option<String>,
    since: Option<String>,
    until: Option<String>,
}
