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
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::keys::admin::{create_key, no_control_characters, CreateKey, KeyView};
use crate::keys::update::{update_key, UpdateKey};
use crate::keys::{bearer_token, ApiKey};
use crate::limits::admin::{list_teams as all_teams, set_team as store_team, SetTeam, TeamView};
use crate::limits::TeamBudget;
use crate::state::AppState;
use crate::store::{parse_day, UsageGroup};
use crate::telemetry::ClientText;

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
        ApiError::new(
            ErrorCode::InvalidAdminToken,
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
    tracing::info!(key_id = ?ClientText(&created.view.id), team = ?ClientText(&created.view.team), "key created");
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
        ApiError::new(ErrorCode::KeyNotFound, format!("No key has the id `{id}`."))
    })?;
    if let Some(key) = ApiKey::from_record(&record) {
        state.keys.insert(key);
    }
    tracing::info!(key_id = ?ClientText(&id), team = ?ClientText(&record.team), "key revoked");
    Ok(Json(KeyView::from(&record)))
}

/// `PATCH /admin/keys/{id}`: changes limits; this process applies them at once, others within
/// `server.key_refresh_ms`.
pub async fn update(
    State(state): State<AppState>,
    OpenAiPath(id): OpenAiPath<String>,
    OpenAiJson(request): OpenAiJson<UpdateKey>,
) -> ApiResult<Json<KeyView>> {
    let (view, key) = update_key(&state.db, &id, request).await?;
    state.keys.insert(key);
    tracing::info!(key_id = ?ClientText(&id), "key limits changed");
    Ok(Json(view))
}

/// `PUT /admin/teams/{team}`: sets (replaces) a team's budgets.
pub async fn set_team(
    State(state): State<AppState>,
    OpenAiPath(team): OpenAiPath<String>,
    OpenAiJson(request): OpenAiJson<SetTeam>,
) -> ApiResult<Json<TeamView>> {
    let view = store_team(&state.db, &team, request).await?;
    state.limits.set_team(&view.team, TeamBudget::from(&view));
    tracing::info!(team = ?ClientText(&view.team), "team budgets set");
    Ok(Json(view))
}

/// `GET /admin/teams`
pub async fn list_teams(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let data = all_teams(&state.db)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// `GET /admin/usage?by=team|key|model|endpoint&since=YYYY-MM-DD&until=YYYY-MM-DD`
pub async fn usage(
    State(state): State<AppState>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) =
        query.map_err(|e| ApiError::invalid_request(format!("Invalid query: {e}")))?;
    let by = match query.by.as_deref() {
        None => UsageGroup::Team,
        Some(by) => by.parse().map_err(|_| {
            ApiError::invalid_request("`by` must be team, key, model or endpoint.").param("by")
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
