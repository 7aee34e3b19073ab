//! Turns an [`Answer`] into Zhipu's wire shapes: one JSON completion, or an SSE stream of
//! `data: {json}\n\n` events sent one at a time with a delay between them.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::answer::{Answer, Reply};
use super::directives::StreamFault;

/// Zhipu's exact streaming content type.
const SSE_CONTENT_TYPE: &str = "text/event-stream;charset=UTF-8";
/// Faults strike after this many content chunks.
const FAULT_AFTER_CHUNKS: usize = 2;

/// What every chunk and the completion share.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub id: String,
    pub created: i64,
    pub model: String,
}

/// The non-stream completion.
pub(crate) fn completion(env: &Envelope, answer: &Answer) -> Response {
    let message = match &answer.reply {
        Reply::Text { pieces, .. } => json!({"role": "assistant", "content": pieces.concat()}),
        Reply::ToolCall { .. } => {
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call_json(answer)]})
        }
    };
    let mut body = json!({
        "id": env.id,
        "request_id": env.id,
        "created": env.created,
        "model": env.model,
        "choices": [{"index": 0, "finish_reason": answer.finish_reason(), "message": message}],
        "usage": answer.usage(),
    });
    add_content_filter(&mut body, answer);
    Json(body).into_response()
}

/// The streamed completion; `fault` breaks it after two content chunks.
pub(crate) fn stream(
    env: Envelope,
    answer: Answer,
    delay: Duration,
    fault: Option<StreamFault>,
) -> Response {
    let events = async_stream::stream! {
        if let Reply::Text { pieces, .. } = &answer.reply {
            let fault_at = pieces.len().min(FAULT_AFTER_CHUNKS);
            for (i, piece) in pieces.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(delay).await;
                }
                yield Ok(event(&content_chunk(&env, piece)));
                if let (true, Some(fault)) = (i + 1 == fault_at, fault) {
                    tokio::time::sleep(delay).await;
                    match fault {
                        StreamFault::Stall => std::future::pending::<()>().await,
                        StreamFault::BadUtf8 => yield Ok(bad_utf8_chunk(&env)),
                        StreamFault::LongLine(bytes) => {
                            for piece in long_chunk(&env, bytes) {
                                yield Ok(piece);
                            }
                        }
                        StreamFault::Cut | StreamFault::MidstreamError => {
                            yield fault_event(fault);
                            return;
                        }
                    }
                }
            }
        } else {
            yield Ok(event(&tool_call_chunk(&env, &answer)));
        }
        tokio::time::sleep(delay).await;
        yield Ok(event(&final_chunk(&env, &answer)));
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
    };
    let mut response = Body::from_stream(events).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(SSE_CONTENT_TYPE));
    response
}

/// `#hang`: the stream's headers, then nothing, ever.
pub(crate) fn hang() -> Response {
    let events = futures_util::stream::pending::<Result<Bytes, io::Error>>();
    let mut response = Body::from_stream(events).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(SSE_CONTENT_TYPE));
    response
}

/// What ends a broken stream: an error event, or an error that makes the server drop the
/// connection without the terminating chunk.
fn fault_event(fault: StreamFault) -> Result<Bytes, io::Error> {
    match fault {
        StreamFault::Cut => Err(io::Error::other("stream cut on purpose")),
        _ => {
            let error = json!({"error": {"code": "1234", "message": "网络错误，请稍后重试"}});
            Ok(event(&error))
        }
    }
}

/// `#bad-utf8`: a content chunk whose text holds the byte 0xFF (where U+FFFD was).
fn bad_utf8_chunk(env: &Envelope) -> Bytes {
    let text = event(&content_chunk(env, "bad-\u{fffd}-byte"));
    let replacement = "\u{fffd}".as_bytes();
    let at = text
        .windows(replacement.len())
        .position(|w| w == replacement)
        .unwrap_or(0);
    let mut bytes = text[..at].to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(&text[at + replacement.len()..]);
    Bytes::from(bytes)
}

/// `#long-line`: a content chunk of about `bytes` bytes, sent in 64 KiB pieces.
fn long_chunk(env: &Envelope, bytes: usize) -> Vec<Bytes> {
    let text = event(&content_chunk(env, &"a".repeat(bytes))).to_vec();
    text.chunks(64 << 10).map(Bytes::copy_from_slice).collect()
}

fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn content_chunk(env: &Envelope, piece: &str) -> Value {
    json!({
        "id": env.id,
        "created": env.created,
        "model": env.model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}}],
    })
}

/// Zhipu sends a whole tool call in one delta that already carries the finish reason.
fn tool_call_chunk(env: &Envelope, answer: &Answer) -> Value {
    json!({
        "id": env.id,
        "created": env.created,
        "model": env.model,
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "delta": {"role": "assistant", "tool_calls": [tool_call_json(answer)]},
        }],
    })
}

/// Usage rides in the chunk with the finish reason, whether or not the client asked for it.
fn final_chunk(env: &Envelope, answer: &Answer) -> Value {
    let mut chunk = json!({
        "id": env.id,
        "created": env.created,
        "model": env.model,
        "choices": [{
            "index": 0,
            "finish_reason": answer.finish_reason(),
            "delta": {"role": "assistant", "content": ""},
        }],
        "usage": answer.usage(),
    });
    add_content_filter(&mut chunk, answer);
    chunk
}

fn tool_call_json(answer: &Answer) -> Value {
    match &answer.reply {
        Reply::ToolCall {
            id,
            name,
            arguments,
        } => json!({
            "id": id,
            "index": 0,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }),
        Reply::Text { .. } => Value::Null,
    }
}

fn add_content_filter(body: &mut Value, answer: &Answer) {
    if answer.finish_reason() == "sensitive" {
        body["content_filter"] = json!([{"role": "assistant", "level": 1}]);
    }
}

/// `#http html`: what a failing proxy in front of Zhipu sends.
pub(crate) fn bad_gateway_html() -> Response {
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html")], html).into_response()
}

/// `#http empty`: 503 with no body at all.
pub(crate) fn unavailable_empty() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Body::empty()).into_response()
}
