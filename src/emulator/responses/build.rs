//! Turns the emulated model's [`Answer`] into Zhipu's Response API shapes: the response object
//! (with the fields live Zhipu leaves out left out) and its stream of `event:` + `data:` frames.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::new_id;
use crate::emulator::answer::{Answer, Reply};

/// Faults strike after this many text deltas.
const FAULT_AFTER_DELTAS: usize = 2;

/// What makes one response besides the answer.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub id: String,
    pub created_at: i64,
    pub model: String,
    pub previous: Option<String>,
}

/// How a stream should misbehave.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StreamFaults {
    /// `response.failed` then an `error` event after two deltas.
    pub fail: bool,
    /// No trailing `data: [DONE]`.
    pub no_done: bool,
}

/// The output items of the answer (all `completed`).
pub(crate) fn output_items(answer: &Answer, message_id: &str) -> Vec<Value> {
    match &answer.reply {
        Reply::Text { pieces, .. } => vec![message_item(message_id, &pieces.concat(), "completed")],
        Reply::ToolCall {
            id,
            name,
            arguments,
        } => vec![json!({
            "id": format!("fc_{id}"), "type": "function_call", "call_id": id, "name": name,
            "arguments": arguments, "status": "completed",
        })],
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "role": "assistant", "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn usage(answer: &Answer) -> Value {
    json!({
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": answer.cached_tokens},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    })
}

/// The whole response, `status` completed, or incomplete when the answer was cut by length.
pub(crate) fn response(meta: &Meta, answer: &Answer, output: Vec<Value>) -> Value {
    let incomplete = answer.finish_reason() == "length";
    json!({
        "id": meta.id,
        "object": "response",
        "created_at": meta.created_at,
        "model": meta.model,
        "status": if incomplete { "incomplete" } else { "completed" },
        "error": null,
        "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "previous_response_id": meta.previous,
        "output": output,
        "usage": usage(answer),
    })
}

/// The stream: `response.created`, `response.in_progress`, the item events, then the terminal
/// `response.completed|incomplete` carrying the whole response, then `data: [DONE]`.
pub(crate) fn stream(
    answer: Answer,
    whole: Value,
    delay: Duration,
    faults: StreamFaults,
) -> Response {
    let events = async_stream::stream! {
        let mut seq = 0u64;
        let mut frame = |kind: &str, mut data: Value| {
            data["type"] = Value::from(kind);
            data["sequence_number"] = Value::from(seq);
            seq += 1;
            Ok::<_, std::io::Error>(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")))
        };
        let mut pending = whole.clone();
        pending["status"] = Value::from("in_progress");
        pending["output"] = json!([]);
        pending["usage"] = Value::Null;
        yield frame("response.created", json!({"response": pending}));
        yield frame("response.in_progress", json!({"response": pending}));
        let item = whole["output"][0].clone();
        let item_id = item["id"].clone();
        match &answer.reply {
            Reply::Text { pieces, .. } => {
                let mut added = message_item(item_id.as_str().unwrap_or_default(), "", "in_progress");
                added["content"] = json!([]);
                yield frame("response.output_item.added", json!({"output_index": 0, "item": added}));
                let part = json!({"type": "output_text", "text": "", "annotations": []});
                yield frame("response.content_part.added",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}));
                for (i, piece) in pieces.iter().enumerate() {
                    tokio::time::sleep(delay).await;
                    yield frame("response.output_text.delta", json!({"item_id": item_id,
                        "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}));
                    if faults.fail && i + 1 == FAULT_AFTER_DELTAS.min(pieces.len()) {
                        let mut failed = pending.clone();
                        failed["status"] = Value::from("failed");
                        failed["error"] = json!({"code": "server_error", "message": "模型服务异常"});
                        yield frame("response.failed", json!({"response": failed}));
                        yield frame("error", json!({"code": "server_error", "message": "模型服务异常", "param": null}));
                        return;
                    }
                }
                let text = pieces.concat();
                yield frame("response.output_text.done", json!({"item_id": item_id,
                    "output_index": 0, "content_index": 0, "text": text, "logprobs": []}));
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                yield frame("response.content_part.done",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}));
            }
            Reply::ToolCall { arguments, .. } => {
                let mut added = item.clone();
                added["arguments"] = Value::from("");
                added["status"] = Value::from("in_progress");
                yield frame("response.output_item.added", json!({"output_index": 0, "item": added}));
                tokio::time::sleep(delay).await;
                yield frame("response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": 0, "delta": arguments}));
                yield frame("response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": 0, "arguments": arguments}));
            }
        }
        yield frame("response.output_item.done", json!({"output_index": 0, "item": item}));
        tokio::time::sleep(delay).await;
        let terminal = if whole["status"] == "incomplete" { "response.incomplete" } else { "response.completed" };
        yield frame(terminal, json!({"response": whole}));
        if !faults.no_done {
            yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
        }
    };
    let mut response = Body::from_stream(events).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream;charset=UTF-8"),
    );
    response
}

/// A fresh `resp_` id: the 14-digit local time, then random hex.
pub(crate) fn response_id() -> String {
    let stamp = chrono::Local::now().format("%Y%m%d%H%M%S");
    format!("resp_{stamp}{}", new_id("").trim_start_matches('_'))
}
