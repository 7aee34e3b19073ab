//! The per-stream rewriter of Zhipu's SSE chunks into OpenAI's `chat.completion.chunk` events.
//! It sees one event at a time and keeps only ids, flags, usage and the one chunk it holds back
//! (the one that carries the finish), never the answer's text. It only rewrites: what the
//! ledger learns from a stream, `usage::Tap` reads from the same parsed events.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::response::{ensure_function_type, map_finish_reason, network_error, FinishReason};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::upstream::map_zhipu_value;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// One upstream SSE event's `data`, parsed once.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// An empty payload (keep-alive): nothing to do.
    Blank,
    Done,
    Chunk(Value),
    /// Not JSON.
    Invalid,
}

impl UpstreamEvent {
    pub fn parse(data: &str) -> Self {
        let data = data.trim();
        if data.is_empty() {
            return Self::Blank;
        }
        if data == "[DONE]" {
            return Self::Done;
        }
        serde_json::from_str(data).map_or(Self::Invalid, Self::Chunk)
    }
}

/// Rewrites one upstream stream. Invariants: `finish_reason` at most once per choice index and
/// only on the last chunk that has that choice; at most one `[DONE]`; nothing after `[DONE]` or
/// an error event; no `event:`/`id:` lines.
#[derive(Debug)]
pub struct ChunkRewriter {
    include_usage: bool,
    finished: bool,
    /// Some choice reported a regular finish_reason, so the answer is whole even if `[DONE]`
    /// never comes.
    answered: bool,
    /// Choice indexes that finished, with their (OpenAI) reason.
    finished_choices: Vec<(u64, &'static str)>,
    /// The chunk that carries the finish, held back until it is known to be the last chunk
    /// with a choice: GLM repeats the finish on later tool-call chunks.
    held: Option<Value>,
    usage: Option<Value>,
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    error: Option<ApiError>,
}

/// What one choice of a chunk comes to.
enum Choice {
    /// Nothing worth sending (a bare repeat of a finish).
    Skip,
    Send,
    /// It carries the finish (newly, or again with content after it).
    Finish,
}

impl ChunkRewriter {
    /// `include_usage` is the client's `stream_options.include_usage`.
    pub fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            finished: false,
            answered: false,
            finished_choices: Vec::new(),
            held: None,
            usage: None,
            id: None,
            created: None,
            model: None,
            error: None,
        }
    }

    /// Takes the `data` of one upstream SSE event; returns the frames to send downstream.
    pub fn push(&mut self, data: &str) -> Vec<Bytes> {
        self.push_event(UpstreamEvent::parse(data))
    }

    /// Takes one parsed upstream event; returns the frames to send downstream, each already
    /// framed as `data: <json>\n\n`. Sets `is_finished` after `[DONE]` or an error event.
    pub fn push_event(&mut self, event: UpstreamEvent) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        let chunk = match event {
            UpstreamEvent::Blank => return Vec::new(),
            UpstreamEvent::Done => return self.end(),
            UpstreamEvent::Invalid => {
                return self.fail(ApiError::new(
                    ErrorCode::UpstreamInvalidResponse,
                    "upstream sent a stream event that is not valid JSON",
                ))
            }
            UpstreamEvent::Chunk(chunk) => chunk,
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return self.fail(map_zhipu_value(200, &chunk));
        }
        match self.rewrite(chunk) {
            Ok(frames) => frames,
            Err(error) => self.fail(error),
        }
    }

    /// The upstream closed (or failed) — `failure` is Some when reading failed. Returns the last
    /// frames: if the answer had finished normally but no `[DONE]` came, the held chunk, the
    /// usage chunk (if asked) and `[DONE]`; if it had not finished, an error event (`failure`,
    /// else a 502).
    pub fn finish(&mut self, failure: Option<&ApiError>) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        if self.answered {
            return self.end();
        }
        let error = failure.cloned().unwrap_or_else(|| {
            ApiError::new(
                ErrorCode::UpstreamStreamIncomplete,
                "upstream stream ended before the answer was complete",
            )
        });
        self.fail(error)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The usage the upstream reported (from the final chunk).
    pub fn usage(&self) -> Option<&Value> {
        self.usage.as_ref()
    }

    /// The error the stream ended with, if it ended with an error event.
    pub fn error(&self) -> Option<&ApiError> {
        self.error.as_ref()
    }

    fn end(&mut self) -> Vec<Bytes> {
        self.finished = true;
        let mut frames = Vec::with_capacity(3);
        frames.extend(self.held.take().map(|held| frame(&held)));
        frames.extend(self.usage_frame());
        frames.push(Bytes::from_static(DONE));
        frames
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        self.finished = true;
        let mut frames = Vec::with_capacity(2);
        frames.extend(self.held.take().map(|held| frame(&held)));
        frames.push(frame(&error.body()));
        self.error = Some(error);
        frames
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

    /// The frames a chunk releases: none (only a repeated finish or usage), itself, or the
    /// chunk held before it when this one takes over the finish.
    fn rewrite(&mut self, chunk: Value) -> ApiResult<Vec<Bytes>> {
        let Value::Object(mut chunk) = chunk else {
            return Err(ApiError::new(
                ErrorCode::UpstreamInvalidResponse,
                "upstream sent a stream event that is not a JSON object",
            ));
        };
        self.remember_ids(&chunk);
        if let Some(usage) = chunk.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage);
        }
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return Ok(Vec::new());
        };
        let mut finishing = false;
        let mut at = 0;
        while at < choices.len() {
            match self.rewrite_choice(&mut choices[at])? {
                Choice::Skip => {
                    choices.remove(at);
                }
                Choice::Send => at += 1,
                Choice::Finish => {
                    finishing = true;
                    at += 1;
                }
            }
        }
        if choices.is_empty() {
            return Ok(Vec::new());
        }
        chunk.insert("object".to_owned(), Value::from("chat.completion.chunk"));
        if self.include_usage {
            chunk.insert("usage".to_owned(), Value::Null);
        }
        let chunk = Value::Object(chunk);
        if !finishing {
            return Ok(vec![frame(&chunk)]);
        }
        // This chunk now carries the finish; the one held before it goes out without it.
        let released = self.held.replace(chunk).map(|mut held| {
            clear_finish(&mut held);
            frame(&held)
        });
        Ok(released.into_iter().collect())
    }

    fn remember_ids(&mut self, chunk: &Map<String, Value>) {
        if self.id.is_none() {
            self.id = chunk.get("id").cloned();
            self.created = chunk.get("created").cloned();
            self.model = chunk.get("model").cloned();
        }
    }

    fn rewrite_choice(&mut self, choice: &mut Value) -> ApiResult<Choice> {
        let Some(choice) = choice.as_object_mut() else {
            return Ok(Choice::Skip);
        };
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let carries = match choice.get_mut("delta") {
            Some(delta) => rewrite_delta(delta),
            None => {
                choice.insert("delta".to_owned(), Value::Object(Map::new()));
                false
            }
        };
        let earlier = self
            .finished_choices
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, reason)| *reason);
        let reported = match choice.get("finish_reason").and_then(Value::as_str) {
            None => None,
            Some(reason) => match map_finish_reason(reason) {
                FinishReason::NetworkError => return Err(network_error()),
                FinishReason::Mapped(reason) => Some(reason),
            },
        };
        let (outcome, reason) = match (earlier, reported) {
            // Content after the finish (GLM's parallel tool calls): the finish moves here.
            (Some(reason), _) if carries => (Choice::Finish, Value::from(reason)),
            (Some(_), _) => return Ok(Choice::Skip),
            (None, Some(reason)) => {
                self.finished_choices.push((index, reason));
                self.answered = true;
                (Choice::Finish, Value::from(reason))
            }
            (None, None) => (Choice::Send, Value::Null),
        };
        choice.insert("finish_reason".to_owned(), reason);
        Ok(outcome)
    }
}

/// Normalises a delta in place; returns whether it carries any content.
fn rewrite_delta(delta: &mut Value) -> bool {
    let Some(delta) = delta.as_object_mut() else {
        return false;
    };
    // Zhipu's sensitive-content chunk may say "user"; a streamed answer is the assistant's.
    if let Some(role) = delta.get_mut("role") {
        *role = Value::from("assistant");
    }
    let mut carries = ["content", "reasoning_content"].iter().any(|key| {
        delta
            .get(*key)
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    });
    if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
        carries |= !calls.is_empty();
        for call in calls.iter_mut() {
            // Only a call's first piece (the one with an id) names its type, as OpenAI does;
            // naive accumulators would concatenate a type repeated on every piece.
            if call.get("id").is_some() {
                ensure_function_type(call);
            }
        }
    }
    carries
}

/// Sets every choice's `finish_reason` of a chunk to null.
fn clear_finish(chunk: &mut Value) {
    if let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            choice.insert("finish_reason".to_owned(), Value::Null);
        }
    }
}

fn frame(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

#[cfg(test)]
mod tests;
