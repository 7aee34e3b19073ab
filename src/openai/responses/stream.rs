//! The per-stream rewriter of Zhipu's Response API events into OpenAI's framing,
//! `event: <type>\ndata: {…}\n\n`. Response objects in events are made whole; the stream ends
//! on the terminal `response.completed|incomplete|failed` (or an `error` event) whether or not
//! the upstream adds its `data: [DONE]`, which is never forwarded.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::answer::{complete_item, complete_part, complete_response, Echo};
use crate::error::{ApiError, ErrorCode};
use crate::json_path::At;
use crate::openai::stream::UpstreamEvent;
use crate::upstream::in_band_error;

/// Called once with the id of a stored response, when `response.created` announces it.
pub type OnCreated = Box<dyn FnMut(&str) + Send>;

pub struct ResponsesStream {
    echo: Echo,
    on_created: Option<OnCreated>,
    finished: bool,
    next_sequence: u64,
    error_code: Option<String>,
    /// Output item ids by `output_index`, so that an item the upstream sent without an id gets
    /// the same one in every event that names it.
    item_ids: HashMap<u64, Value>,
}

impl ResponsesStream {
    pub fn new(echo: Echo, on_created: Option<OnCreated>) -> Self {
        Self {
            echo,
            on_created,
            finished: false,
            next_sequence: 0,
            error_code: None,
            item_ids: HashMap::new(),
        }
    }

    /// One parsed upstream event; returns the frames for the client.
    pub fn push_event(&mut self, event: UpstreamEvent) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        let mut event = match event {
            UpstreamEvent::Blank => return Vec::new(),
            UpstreamEvent::Done => return self.finish(None),
            UpstreamEvent::Invalid => {
                return self.fail(&ApiError::new(
                    ErrorCode::UpstreamInvalidResponse,
                    "upstream sent a stream event that is not valid JSON",
                ))
            }
            UpstreamEvent::Chunk(event) => event,
        };
        let Some(kind) = event.get("type").and_then(Value::as_str).map(str::to_owned) else {
            return match in_band_error(&event) {
                Some(error) => self.fail(&error),
                None => Vec::new(),
            };
        };
        match event.get("sequence_number").and_then(Value::as_u64) {
            Some(sequence) => self.next_sequence = sequence + 1,
            None => {
                event["sequence_number"] = Value::from(self.next_sequence);
                self.next_sequence += 1;
            }
        }
        self.keep_item_ids(&mut event);
        match kind.as_str() {
            "response.created" | "response.in_progress" | "response.queued" => {
                complete_response(&mut event["response"], &self.echo);
                if kind == "response.created" {
                    self.announce(&event);
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                complete_response(&mut event["response"], &self.echo);
                self.finished = true;
                if kind == "response.failed" {
                    let code = event.at("/response/error/code").and_then(Value::as_str);
                    self.error_code = Some(code.unwrap_or("response_failed").to_owned());
                }
            }
            "error" => {
                self.finished = true;
                let code = event.get("code").and_then(Value::as_str);
                self.error_code = Some(code.unwrap_or("upstream_error").to_owned());
                for key in ["code", "message", "param"] {
                    event
                        .as_object_mut()
                        .map(|e| e.entry(key).or_insert(Value::Null));
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                complete_item(&mut event["item"]);
            }
            "response.content_part.added" | "response.content_part.done" => {
                complete_part(&mut event["part"]);
            }
            _ => {}
        }
        vec![frame(&kind, &event)]
    }

    /// The upstream closed (or failed: `failure`). A stream that has not reached its terminal
    /// event ends with an `error` event.
    pub fn finish(&mut self, failure: Option<&ApiError>) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        let error = failure.cloned().unwrap_or_else(|| {
            ApiError::new(
                ErrorCode::UpstreamStreamIncomplete,
                "upstream stream ended before the response was complete",
            )
        });
        self.fail(&error)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn error_code(&self) -> Option<String> {
        self.error_code.clone()
    }

    fn fail(&mut self, error: &ApiError) -> Vec<Bytes> {
        self.finished = true;
        let code = error.code.as_str().to_owned();
        self.error_code = Some(code.clone());
        let event = json!({
            "type": "error",
            "code": code,
            "message": error.message,
            "param": error.param,
            "sequence_number": self.next_sequence,
        });
        vec![frame("error", &event)]
    }

    /// Gives items (and the events that point at them by `item_id`) the id first seen, or first
    /// made, for their `output_index`; the terminal response's output gets the same ids.
    fn keep_item_ids(&mut self, event: &mut Value) {
        if let Some(Value::Array(items)) = event.pointer_mut("/response/output") {
            for (index, item) in (0u64..).zip(items.iter_mut()) {
                if let Some(id) = self
                    .item_ids
                    .get(&index)
                    .filter(|_| item.get("id").is_none())
                {
                    item["id"] = id.clone();
                }
            }
        }
        let Some(index) = event.get("output_index").and_then(Value::as_u64) else {
            return;
        };
        if let Some(item) = event.get_mut("item").filter(|item| item.is_object()) {
            let known = self.item_ids.get(&index);
            match known {
                Some(id) if item.get("id").is_none_or(Value::is_null) => item["id"] = id.clone(),
                _ => complete_item(item),
            }
            self.item_ids
                .entry(index)
                .or_insert_with(|| item["id"].clone());
        } else if event.get("item_id").is_none_or(Value::is_null) {
            if let Some(id) = self.item_ids.get(&index) {
                event["item_id"] = id.clone();
            }
        }
    }

    fn announce(&mut self, event: &Value) {
        let id = event.at("/response/id").and_then(Value::as_str);
        if let (Some(id), Some(mut on_created)) = (id, self.on_created.take()) {
            on_created(id);
        }
    }
}

fn frame(kind: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}
