//! `POST /chat/completions`: authenticate, validate, apply directives, then answer as JSON or
//! as a stream. The order of checks is the order real Zhipu reports problems in.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde_json::Value;

use super::answer;
use super::directives::{Directives, HttpFault};
use super::errors::{spring_not_found, ZhipuError};
use super::respond::{self, Envelope};
use super::state::Shared;
use super::{auth, validate};

pub(crate) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Err(err) = auth::check(&shared.keys, &headers, now_ms) {
        return err.into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return ZhipuError::new(1210, "请求体必须是JSON对象").into_response();
    };
    let request = match validate::chat_request(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    if let Some(id) = request.request_id {
        if !shared.remember_request_id(id) {
            return ZhipuError::from_code(1231).into_response();
        }
    }
    let mut directives = Directives::from_messages(request.messages);
    let other_key = directives
        .only_key
        .as_ref()
        .is_some_and(|id| auth::caller_id(&headers).as_ref() != Some(id));
    if other_key || (directives.once && !shared.first_time(&directives.text)) {
        directives.spare();
    }
    if let Some(response) = forced_reply(&directives, uri.path()) {
        return response;
    }
    if directives.hang && !request.stream {
        std::future::pending::<()>().await;
    }
    let answer = answer::plan(&body, request.messages, request.tools, &directives);
    let env = Envelope {
        id: request.request_id.map_or_else(generate_id, str::to_owned),
        created: chrono::Utc::now().timestamp(),
        model: request.model.to_owned(),
    };
    if request.stream {
        let delay = directives.slow.unwrap_or(shared.chunk_delay);
        if directives.hang {
            return respond::hang();
        }
        return respond::stream(env, answer, delay, directives.fault);
    }
    if let Some(delay) = directives.slow {
        tokio::time::sleep(delay).await;
    }
    respond::completion(&env, &answer)
}

/// `#http` and `#error` replies, which replace the answer entirely.
pub(crate) fn forced_reply(directives: &Directives, path: &str) -> Option<Response> {
    if let Some(fault) = directives.http {
        return Some(match fault {
            HttpFault::Spring => spring_not_found(path),
            HttpFault::Html => respond::bad_gateway_html(),
            HttpFault::Empty => respond::unavailable_empty(),
        });
    }
    let (code, with_200) = directives.error?;
    let error = ZhipuError::from_code(code);
    let error = if with_200 {
        error.with_status(StatusCode::OK)
    } else {
        error
    };
    Some(error.into_response())
}

/// An id shaped like Zhipu's: a local timestamp followed by random hex.
fn generate_id() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    let stamp = chrono::Local::now().format("%Y%m%d%H%M%S");
    format!("{stamp}{}", hex::encode(bytes))
}
