//! Where chat completions and the Responses API differ for an emulated promise: where the
//! instruction goes, how a function tool is named, how an answer is read, and how a repair
//! call adds the model's answer and the request to fix it. Everything else is shared.

use serde_json::{json, Map, Value};

use super::check::{Call, Said};
use crate::json_path::At;

/// The API a request came in on (and its answer goes out on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// `/chat/completions`, in GLM's request shape and OpenAI's answer shape.
    Chat,
    /// `/responses`, Zhipu's Response API, whose shapes are OpenAI's.
    Responses,
}

impl Surface {
    /// The name of a function tool as sent upstream; `None` for other tool types.
    pub(crate) fn function_name(self, tool: &Value) -> Option<&str> {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return None;
        }
        match self {
            Self::Chat => tool.at("/function/name"),
            Self::Responses => tool.get("name"),
        }
        .and_then(Value::as_str)
    }

    /// The request field that holds the schema, for the 400 of a schema that cannot be used.
    pub(super) fn schema_param(self) -> &'static str {
        match self {
            Self::Chat => "response_format.json_schema.schema",
            Self::Responses => "text.format.schema",
        }
    }

    /// Chat: a system message put first. Responses: the start of `instructions`.
    pub(super) fn put_instruction(self, body: &mut Map<String, Value>, text: &str) {
        match self {
            Self::Chat => {
                if let Some(Value::Array(messages)) = body.get_mut("messages") {
                    messages.insert(0, json!({"role": "system", "content": text}));
                }
            }
            Self::Responses => {
                let joined = match body.get("instructions").and_then(Value::as_str) {
                    Some(theirs) if !theirs.is_empty() => format!("{text}\n\n{theirs}"),
                    _ => text.to_owned(),
                };
                body.insert("instructions".to_owned(), Value::String(joined));
            }
        }
    }

    /// Undoes `put_instruction(body, text)`.
    pub(super) fn take_instruction(self, body: &mut Map<String, Value>, text: &str) {
        match self {
            Self::Chat => {
                if let Some(Value::Array(messages)) = body.get_mut("messages") {
                    let first = messages.first().and_then(|m| m.get("content"));
                    if first.and_then(Value::as_str) == Some(text) {
                        messages.remove(0);
                    }
                }
            }
            Self::Responses => {
                let Some(Value::String(instructions)) = body.get_mut("instructions") else {
                    return;
                };
                if instructions == text {
                    body.remove("instructions");
                } else if let Some(theirs) = instructions
                    .strip_prefix(text)
                    .and_then(|rest| rest.strip_prefix("\n\n"))
                {
                    *instructions = theirs.to_owned();
                }
            }
        }
    }

    /// Chat: `choices[0].message`'s content and tool calls. Responses: the `output_text` of its
    /// `message` items and its `function_call` items.
    pub(super) fn said(self, answer: &Value) -> Said<'_> {
        let text_of = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let mut said = Said::default();
        match self {
            Self::Chat => {
                let message = answer.at("/choices/0/message");
                said.text = text_of(message.and_then(|m| m.get("content"))).unwrap_or_default();
                let calls = message.and_then(|m| m.get("tool_calls"));
                for call in calls.and_then(Value::as_array).into_iter().flatten() {
                    said.calls.push(Call {
                        name: call.at("/function/name").and_then(Value::as_str),
                        arguments: call.at("/function/arguments").and_then(Value::as_str),
                    });
                }
            }
            Self::Responses => {
                let items = answer.get("output").and_then(Value::as_array);
                for item in items.into_iter().flatten() {
                    match item.get("type").and_then(Value::as_str) {
                        Some("message") => {
                            let parts = item.get("content").and_then(Value::as_array);
                            let texts = parts.into_iter().flatten().filter(|part| {
                                part.get("type").and_then(Value::as_str) == Some("output_text")
                            });
                            said.text
                                .extend(texts.filter_map(|p| text_of(p.get("text"))));
                        }
                        Some("function_call") => said.calls.push(Call {
                            name: item.get("name").and_then(Value::as_str),
                            arguments: item.get("arguments").and_then(Value::as_str),
                        }),
                        _ => {}
                    }
                }
            }
        }
        said
    }

    /// Makes `body` (the first call's, cloned) a repair call: never streamed, the model's
    /// answer `said` and the user's `request` appended. Chat also gets a fresh `request_id`
    /// (Zhipu refuses a reused one).
    pub(super) fn add_repair_turns(self, body: &mut Map<String, Value>, said: &str, request: &str) {
        body.remove("stream");
        let turns = [
            json!({"role": "assistant", "content": said}),
            json!({"role": "user", "content": request}),
        ];
        let list = match self {
            Self::Chat => {
                body.remove("tool_stream");
                let request_id = uuid::Uuid::now_v7().simple().to_string();
                body.insert("request_id".to_owned(), Value::String(request_id));
                "messages"
            }
            Self::Responses => {
                if let Some(Value::String(text)) = body.get("input") {
                    let first = json!({"role": "user", "content": text});
                    body.insert("input".to_owned(), json!([first]));
                }
                "input"
            }
        };
        if let Some(Value::Array(items)) = body.get_mut(list) {
            items.extend(turns);
        }
    }
}
