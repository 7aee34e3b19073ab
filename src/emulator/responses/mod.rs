//! Zhipu's Response API under `/api/v1/responses`: create (plain or streamed), retrieve, list
//! input items, delete. As live: `store` defaults to false, a bad key answers HTTP 200 with
//! `success:false`, errors carry string codes, and streams end with a `data: [DONE]`.

mod build;
mod errors;
mod request;
mod store;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde_json::{json, Value};

use super::answer;
use super::chat::forced_reply;
use super::directives::{message_text, Directives};
use super::messages::role_of;
use super::state::Shared;
use build::{Meta, StreamFaults};
use errors::RespError;
pub(crate) use store::Store;

/// Directive words only this surface knows (see `DIRECTIVES_HELP`).
const OWN_WORDS: &[&str] = &["#midstream-fail", "#no-done"];
/// `input_items` pages hold this many items unless `limit` says otherwise (1–100).
const DEFAULT_PAGE: usize = 20;

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&shared, &headers) {
        return errors::auth_failed();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return RespError::invalid("body", "The body must be JSON.").into_response();
    };
    let checked = match request::check(&body) {
        Ok(checked) => checked,
        Err(error) => return error.into_response(),
    };
    let mut items = match &checked.previous {
        None => Vec::new(),
        Some(id) => match shared.responses.get(id) {
            Some(previous) => previous.history,
            None => {
                let message = format!("Previous response with id '{id}' not found.");
                return RespError::invalid("previous_response_id", message).into_response();
            }
        },
    };
    items.extend(checked.input.iter().cloned());
    let messages = request::chat_messages(checked.instructions.as_deref(), &items);
    let (mut directives, forced, faults) = directives_of(&messages);
    if let Some(code) = forced {
        return RespError::forced(&code).into_response();
    }
    if let Some(reply) = forced_reply(&directives, uri.path()) {
        return reply;
    }
    let mut plan_body = body.clone();
    if checked.json_mode {
        plan_body["response_format"] = json!({"type": "json_object"});
    }
    let answer = answer::plan(&plan_body, &messages, &checked.tools, &directives);
    let meta = Meta {
        id: build::response_id(),
        created_at: chrono::Utc::now().timestamp(),
        model: checked.model.clone(),
        previous: checked.previous.clone(),
    };
    let output = build::output_items(&answer, &new_id("msg"));
    let whole = build::response(&meta, &answer, output.clone());
    if checked.store && !faults.fail {
        items.extend(output);
        let stored = store::Stored {
            response: whole.clone(),
            input: checked.input.clone(),
            history: items,
        };
        shared.responses.put(meta.id.clone(), stored);
    }
    let delay = directives.slow.take();
    if checked.stream {
        return build::stream(answer, whole, delay.unwrap_or(shared.chunk_delay), faults);
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    Json(whole).into_response()
}

pub(crate) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return errors::auth_failed();
    }
    match shared.responses.get(&id) {
        Some(stored) => Json(stored.response).into_response(),
        None => RespError::unknown_response(&id).into_response(),
    }
}

pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return errors::auth_failed();
    }
    if !shared.responses.remove(&id) {
        return RespError::unknown_response(&id).into_response();
    }
    Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
}

/// A page of a stored response's input items: `order` desc (default) or asc, `limit`, `after`.
pub(crate) async fn input_items(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared, &headers) {
        return errors::auth_failed();
    }
    let Some(stored) = shared.responses.get(&id) else {
        return RespError::unknown_response(&id).into_response();
    };
    let mut items = stored.input;
    match query.get("order").map(String::as_str) {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(_) => {
            return RespError::invalid("order", "order must be asc or desc.").into_response()
        }
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_PAGE,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => return RespError::invalid("limit", "limit must be 1 to 100.").into_response(),
    };
    if let Some(after) = query.get("after") {
        let at = items
            .iter()
            .position(|i| i["id"].as_str() == Some(after.as_str()));
        items = at.map(|at| items.split_off(at + 1)).unwrap_or_default();
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    let first = items.first().map(|i| i["id"].clone());
    let last = items.last().map(|i| i["id"].clone());
    Json(json!({"object": "list", "data": items, "first_id": first, "last_id": last, "has_more": has_more}))
        .into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let now_ms = chrono::Utc::now().timestamp_millis();
    super::auth::check(&shared.keys, headers, now_ms).is_ok()
}

/// Chat's directives from the last user message, plus this surface's own: `#error CODE` with a
/// string code, `#midstream-fail`, `#no-done`.
fn directives_of(messages: &[Value]) -> (Directives, Option<String>, StreamFaults) {
    let mut directives = Directives::from_messages(messages);
    let last_user = messages.iter().rev().find(|m| role_of(m) == Some("user"));
    let text = last_user.map(message_text).unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().collect();
    let forced = words
        .windows(2)
        .find(|w| w[0] == "#error" && errors::CODES.contains(&w[1]))
        .map(|w| w[1].to_owned());
    let faults = StreamFaults {
        fail: words.contains(&"#midstream-fail"),
        no_done: words.contains(&"#no-done"),
    };
    directives.text = directives
        .text
        .split_whitespace()
        .filter(|w| !OWN_WORDS.contains(w))
        .collect::<Vec<_>>()
        .join(" ");
    (directives, forced, faults)
}

/// `prefix_` and 24 random hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}
