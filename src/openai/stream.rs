//! The per-stream rewriter of Zhipu's SSE chunks into OpenAI's `chat.completion.chunk` events.
//! It sees one event at a time and keeps only ids, flags and usage, never the answer's text.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::response::{ensure_function_type, map_finish_reason, network_error, FinishReason};
use super::zhipu_error::map_zhipu_value;
use crate::error::{ApiError, ApiResult};

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Rewrites one upstream stream. Invariants: at most one `finish_reason` per choice index, at
/// most one `[DONE]`, nothing after `[DONE]` or an error event, and no `event:`/`id:` lines.
#[derive(Debug)]
pub struct ChunkRewriter {
    include_usage: bool,
    finished: bool,
    /// Some choice reported a regular finish_reason, so the answer is whole even if `[DONE]`
    /// never comes.
    answered: bool,
    finished_choices: Vec<u64>,
    usage: Option<Value>,
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    streamed_chars: usize,
    /// The answer's text, kept only when asked (`keep_text`), up to `text_limit` bytes.
    text: Option<String>,
    text_limit: usize,
    text_full: bool,
    error: Option<ApiError>,
}

impl ChunkRewriter {
    /// `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            finished: false,
            answered: false,
            finished_choices: Vec::new(),
            usage: None,
            id: None,
            created: None,
            model: None,
            streamed_chars: 0,
            text: None,
            text_limit: 0,
            text_full: false,
            error: None,
        }
    }

    /// Takes the `data` of one upstream SSE event; returns the frames to send downstream, each
    /// already framed as `data: <json>\n\n`. Sets `is_finished` after `[DONE]` or an error event.
    pub fn push(&mut self, data: &str) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        let data = data.trim();
        if data.is_empty() {
            return Vec::new();
        }
        if data == "[DONE]" {
            return self.end();
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(_) => {
                return self.fail(ApiError::bad_gateway(
                    "upstream_invalid_response",
                    "upstream sent a stream event that is not valid JSON",
                ))
            }
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return self.fail(map_zhipu_value(200, &chunk));
        }
        match self.rewrite(chunk) {
            Ok(Some(frame)) => vec![frame],
            Ok(None) => Vec::new(),
            Err(error) => self.fail(error),
        }
    }

    /// The upstream closed (or failed) — `failure` is Some when reading failed. Returns the last
    /// frames: if the answer had finished normally but no `[DONE]` came, the usage chunk (if
    /// asked) and `[DONE]`; if it had not finished, an error event (`failure`, else a 502).
    pub fn finish(&mut self, failure: Option<&ApiError>) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        if self.answered {
            return self.end();
        }
        let error = failure.cloned().unwrap_or_else(|| {
            ApiError::bad_gateway(
                "upstream_stream_incomplete",
                "upstream stream ended before the answer was complete",
            )
        });
        self.fail(error)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The usage the upstream reported (from the final chunk), for the usage ledger.
    pub fn usage(&self) -> Option<&Value> {
        self.usage.as_ref()
    }

    /// Counts of streamed characters of content/reasoning/tool arguments, for estimating usage
    /// when none came.
    pub fn streamed_chars(&self) -> usize {
        self.streamed_chars
    }

    /// Keeps the answer's content text, up to `limit` bytes, for `text()`. Off by default: a
    /// stream's memory stays bounded by its state, not its length.
    pub fn keep_text(mut self, limit: usize) -> Self {
        self.text = Some(String::new());
        self.text_limit = limit;
        self
    }

    /// The content text kept with `keep_text`.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// The error the stream ended with, if it ended with an error event (for the ledger).
    pub fn error(&self) -> Option<&ApiError> {
        self.error.as_ref()
    }

    fn end(&mut self) -> Vec<Bytes> {
        self.finished = true;
        let mut frames = Vec::with_capacity(2);
        frames.extend(self.usage_frame());
        frames.push(Bytes::from_static(DONE));
        frames
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        self.finished = true;
        let frame = frame(&error.body());
        self.error = Some(error);
        vec![frame]
    }

    /// OpenAI's separate usage chunk. Sent only when the upstream reported usage: the gateway
    /// does not invent numbers on the wire.
    fn usage_frame(&self) -> Option<Bytes> {
        if !self.include_usage {
            return None;
        }
        let usage = self.usage.as_ref()?;
        Some(frame(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        })))
    }

    /// `None` when nothing is left to forward (the chunk only repeated a finish or carried usage).
    fn rewrite(&mut self, chunk: Value) -> ApiResult<Option<Bytes>> {
        let Value::Object(mut chunk) = chunk else {
            return Err(ApiError::bad_gateway(
                "upstream_invalid_response",
                "upstream sent a stream event that is not a JSON object",
            ));
        };
        self.remember_ids(&chunk);
        if let Some(usage) = chunk.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage);
        }
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return Ok(None);
        };
        let mut at = 0;
        while at < choices.len() {
            if self.rewrite_choice(&mut choices[at])? {
                at += 1;
            } else {
                choices.remove(at);
            }
        }
        if choices.is_empty() {
            return Ok(None);
        }
        chunk.insert("object".to_owned(), Value::from("chat.completion.chunk"));
        if self.include_usage {
            chunk.insert("usage".to_owned(), Value::Null);
        }
        Ok(Some(frame(&Value::Object(chunk))))
    }

    fn remember_ids(&mut self, chunk: &Map<String, Value>) {
        if self.id.is_none() {
            self.id = chunk.get("id").cloned();
            self.created = chunk.get("created").cloned();
            self.model = chunk.get("model").cloned();
        }
    }

    /// Returns whether the choice is still worth sending.
    fn rewrite_choice(&mut self, choice: &mut Value) -> ApiResult<bool> {
        let Some(choice) = choice.as_object_mut() else {
            return Ok(false);
        };
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let carries = match choice.get_mut("delta") {
            Some(delta) => self.rewrite_delta(delta),
            None => {
                choice.insert("delta".to_owned(), Value::Object(Map::new()));
                false
            }
        };
        let reason = match choice.get("finish_reason").and_then(Value::as_str) {
            None => Value::Null,
            Some(reason) => match map_finish_reason(reason) {
                FinishReason::NetworkError => return Err(network_error()),
                // Zhipu repeats `tool_calls` in a second chunk; OpenAI clients expect it once.
                FinishReason::Mapped(_) if self.finished_choices.contains(&index) => {
                    if !carries {
                        return Ok(false);
                    }
                    Value::Null
                }
                FinishReason::Mapped(reason) => {
                    self.finished_choices.push(index);
                    self.answered = true;
                    Value::from(reason)
                }
            },
        };
        choice.insert("finish_reason".to_owned(), reason);
        Ok(true)
    }

    /// Normalises a delta in place and counts its text; returns whether it carries any content.
    fn rewrite_delta(&mut self, delta: &mut Value) -> bool {
        let Some(delta) = delta.as_object_mut() else {
            return false;
        };
        // Zhipu's sensitive-content chunk may say "user"; a streamed answer is the assistant's.
        if let Some(role) = delta.get_mut("role") {
            *role = Value::from("assistant");
        }
        let mut carries = false;
        for key in ["content", "reasoning_content"] {
            if let Some(text) = delta.get(key).and_then(Value::as_str) {
                carries |= !text.is_empty();
                self.streamed_chars += text.chars().count();
                if key == "content" {
                    self.keep(text);
                }
            }
        }
        if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
            carries |= !calls.is_empty();
            for call in calls.iter_mut() {
                // Only a call's first piece (the one with an id) names its type, as OpenAI does;
                // naive accumulators would concatenate a type repeated on every piece.
                if call.get("id").is_some() {
                    ensure_function_type(call);
                }
                let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
                self.streamed_chars += arguments.map_or(0, |a| a.chars().count());
            }
        }
        carries
    }
}

impl ChunkRewriter {
    /// Appends to the kept text while it is under the limit; the text is cut there, never
    /// holed (once a piece does not fit whole, nothing after it is kept).
    fn keep(&mut self, piece: &str) {
        let Some(kept) = self.text.as_mut() else {
            return;
        };
        if self.text_full {
            return;
        }
        let room = self.text_limit.saturating_sub(kept.len());
        if piece.len() <= room {
            kept.push_str(piece);
            return;
        }
        let cut = (0..=room)
            .rev()
            .find(|at| piece.is_char_boundary(*at))
            .unwrap_or(0);
        kept.push_str(&piece[..cut]);
        self.text_full = true;
    }
}

fn frame(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

#[cfg(test)]
mod tests;
