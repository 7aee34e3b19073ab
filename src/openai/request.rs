//! The chat completion request as OpenAI clients send it: the typed shape every translation
//! step reads (a leaf: it knows no translation).

use serde::Deserialize;
use serde_json::{Map, Value};

/// An OpenAI chat completion request as clients send it. Known OpenAI fields are typed (so a
/// wrong type is a 400 naming the field); everything else is kept in `extra` and passed to Zhipu
/// untouched, which is how GLM-only fields (do_sample, thinking, meta, tool_stream, user_id,
/// sensitive_word_check, watermark_enabled, extra, request_id…) stay reachable through
/// `extra_body`.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub stop: Option<Stop>,
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    pub n: Option<i64>,
    pub logprobs: Option<bool>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
    pub functions: Option<Vec<Value>>,
    pub function_call: Option<Value>,
    pub modalities: Option<Vec<String>>,
    pub audio: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message. Other keys are kept in `extra` for the roles that may carry them upstream;
/// `messages` sends each role only the fields Zhipu documents.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: Option<Value>,
    pub tool_calls: Option<Vec<Value>>,
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}
