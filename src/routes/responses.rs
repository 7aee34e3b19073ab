//! `/v1/responses`: create (plain and streamed), retrieve, input items and delete, forwarded to
//! Zhipu's Response API; cancel is refused (Zhipu has none). A stored response is served only
//! to the team (or, without `share_within_team`, the key) that created it: any other caller
//! gets the same 404 as for an unknown id, and Zhipu never sees the attempt.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value};
use tracing::Instrument;

use super::authorize::{admit, authorize_model, Spend};
use super::json::OpenAiJson;
use super::promise::{checked_answer, mark, Checked};
use crate::config::EmulationSwitches;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::keys::ApiKey;
use crate::openai::responses::{complete_response, to_zhipu, Echo, ResponsesPlan, ResponsesStream};
use crate::relay::relay_sse;
use crate::state::AppState;
use crate::upstream::{in_band_error, map_responses_error, UpstreamResponse};
use crate::usage::{Prompt, Tap, TokenUsage, UsageTicket};

/// Query parameters passed on to Zhipu's `input_items`; others are ignored.
const PAGE_PARAMS: &[&str] = &["limit", "order", "after", "before", "include", "include[]"];

pub async fn create(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    ticket: UsageTicket,
    OpenAiJson(body): OpenAiJson<Value>,
) -> ApiResult<Response> {
    let requested = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let model = authorize_model(&state, &key, &ticket, requested)?;
    let mut plan = to_zhipu(body, &model, state.config.responses.store_default)?;
    let switches = plan.settle_emulation(&state.config.emulation);
    if let Some(previous) = &plan.previous_response_id {
        visible(&state, &key, previous, "previous_response_id").await?;
    }
    let (instructions, input) = (plan.body.get("instructions"), plan.body.get("input"));
    let prompt = Prompt::responses(instructions, input, ticket.keeps_text());
    let completion = plan.body.get("max_output_tokens").and_then(Value::as_i64);
    let admission = admit(
        &state,
        &key,
        &ticket,
        &model,
        Spend::tokens(prompt, completion),
    )
    .await?;
    let body = serde_json::to_vec(&plan.body).map_err(|e| ApiError::internal(&e))?;
    let upstream = state
        .zhipu
        .responses(Method::POST, "/responses", Some(body), plan.stream)
        .await?;
    let (mut response, checked) = if plan.stream {
        (relay(&state, &key, &ticket, &plan, upstream).await?, None)
    } else {
        answer(&state, &key, &ticket, (&plan, switches), upstream).await?
    };
    if let Some(promise) = &plan.emulation {
        mark(&mut response, &ticket, promise, checked);
    }
    admission.apply_headers(response.headers_mut());
    Ok(response)
}

pub async fn retrieve(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    visible(&state, &key, &id, "response_id").await?;
    let path = format!("/responses/{id}");
    let mut answer = call(&state, Method::GET, &path, None).await?;
    complete_response(&mut answer, &Echo::stored());
    Ok(Json(answer).into_response())
}

pub async fn input_items(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    visible(&state, &key, &id, "response_id").await?;
    let path = format!(
        "/responses/{id}/input_items{}",
        page_query(query.as_deref())
    );
    Ok(Json(call(&state, Method::GET, &path, None).await?).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    visible(&state, &key, &id, "response_id").await?;
    let answer = call(&state, Method::DELETE, &format!("/responses/{id}"), None).await;
    // Gone upstream (deleted or expired) is gone here too.
    if answer.is_ok() || answer.as_ref().is_err_and(|e| e.status().as_u16() == 404) {
        let removed = state.db.delete_response_owner(&id).await;
        removed.map_err(|e| ApiError::internal(&e))?;
    }
    Ok(Json(answer?).into_response())
}

/// Zhipu cannot cancel: it has no background mode, so a response is finished once created.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(key): Extension<Arc<ApiKey>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    visible(&state, &key, &id, "response_id").await?;
    Err(ApiError::new(
        ErrorCode::CancelNotSupported,
        "Zhipu's Response API cannot cancel a response: it has no background mode, so every \
         response is already finished when its creation returns.",
    ))
}

/// A plain answer: a 200 that is an error becomes one; an emulated promise is checked (and
/// the answer repaired) as for chat; the owner of a stored response is recorded before the
/// client learns its id.
async fn answer(
    state: &AppState,
    key: &ApiKey,
    ticket: &UsageTicket,
    (plan, switches): (&ResponsesPlan, EmulationSwitches),
    upstream: UpstreamResponse,
) -> ApiResult<(Response, Option<Checked>)> {
    let mut answer = upstream.json().await?;
    if let Some(error) = in_band_error(&answer) {
        return Err(error);
    }
    complete_response(&mut answer, &plan.echo);
    let mut tap = Tap::new(ticket.keeps_text());
    tap.responses_answer(&answer);
    let repair = |body: Map<String, Value>| async move {
        let body = serde_json::to_vec(&body).map_err(|e| ApiError::internal(&e))?;
        let mut answer = call(state, Method::POST, "/responses", Some(body)).await?;
        complete_response(&mut answer, &plan.echo);
        let usage = answer.get("usage").and_then(TokenUsage::from_responses);
        Ok((answer, usage))
    };
    let promise = plan.emulation.as_ref();
    let (answer, checked) =
        checked_answer(promise, &plan.body, answer, switches, tap, ticket, repair).await?;
    if let (true, Some(id)) = (plan.store, answer.get("id").and_then(Value::as_str)) {
        if let Err(error) = state.db.insert_response_owner(id, &key.id, &key.team).await {
            tracing::error!(%error, "cannot record the owner of a stored response");
        }
    }
    Ok((Json(answer).into_response(), checked))
}

/// A streamed answer; a stored response's owner is recorded when `response.created` names it.
async fn relay(
    state: &AppState,
    key: &ApiKey,
    ticket: &UsageTicket,
    plan: &ResponsesPlan,
    upstream: UpstreamResponse,
) -> ApiResult<Response> {
    let upstream = upstream
        .expect_event_stream_with(map_responses_error)
        .await?;
    let on_created = plan.store.then(|| {
        let (db, tasks) = (state.db.clone(), state.tasks.clone());
        let (key_id, team) = (key.id.clone(), key.team.clone());
        Box::new(move |id: &str| {
            let (db, id, key_id, team) = (db.clone(), id.to_owned(), key_id.clone(), team.clone());
            let record = async move {
                if let Err(error) = db.insert_response_owner(&id, &key_id, &team).await {
                    tracing::error!(%error, "cannot record the owner of a stored response");
                }
            };
            tasks.spawn(record.in_current_span());
        }) as Box<dyn FnMut(&str) + Send>
    });
    let translator = ResponsesStream::new(plan.echo.clone(), on_created);
    let options = state.relay_options(false);
    Ok(relay_sse(
        upstream,
        translator,
        options,
        &state.tasks,
        ticket,
    ))
}

/// The paging parameters of the client's query, re-encoded; empty, or starting with `?`.
fn page_query(query: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if PAGE_PARAMS.contains(&name.as_ref()) {
            out.append_pair(&name, &value);
        }
    }
    let out = out.finish();
    if out.is_empty() {
        out
    } else {
        format!("?{out}")
    }
}

/// A plain call (on a stored response, or a repair call); the answer's JSON, or the error it
/// holds.
async fn call(
    state: &AppState,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> ApiResult<Value> {
    let answer = state.zhipu.responses(method, path, body, false).await?;
    let answer = answer.json().await?;
    match in_band_error(&answer) {
        Some(error) => Err(error),
        None => Ok(answer),
    }
}

/// Whether `key` may see the stored response `id`: its team created it (and, without
/// `share_within_team`, this very key). Anything else is the 404 of an unknown id.
async fn visible(state: &AppState, key: &ApiKey, id: &str, param: &str) -> ApiResult<()> {
    let owner = state
        .db
        .response_owner(id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let shared = state.config.responses.share_within_team;
    let visible = owner.is_some_and(|o| *o.team == *key.team && (shared || o.api_key_id == key.id));
    if visible {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ResponseNotFound,
        format!("No response with id '{id}' was found."),
    )
    .param(param))
}
