//! The chat completion request's translation into the body of Zhipu's `/chat/completions`.
//! Values are moved from the request into the body, never copied.

use serde_json::{Map, Value};

use super::emulate::{self, Emulation, Surface};
use super::request::ChatCompletionRequest;
use super::{messages, params, tools};
use crate::config::{EmulationConfig, EmulationSwitches};
use crate::error::{ApiError, ApiResult};

/// The body for Zhipu plus what the gateway itself needs to know about the answer.
#[derive(Debug)]
pub struct GlmChatRequest {
    pub body: Map<String, Value>,
    pub stream: bool,
    /// The client asked for a usage chunk (`stream_options.include_usage` on a stream).
    pub include_usage: bool,
    /// A `json_schema` or forced `tool_choice` kept by rewriting the body (see `emulate`).
    pub emulation: Option<Emulation>,
}

/// OpenAI fields Zhipu has no equivalent for and that change nothing a client relies on: they
/// are accepted with any value and dropped.
const DROPPED: &[&str] = &[
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "parallel_tool_calls",
    "service_tier",
    "store",
    "metadata",
    "prediction",
    "seed",
    "reasoning_effort",
    "verbosity",
    "web_search_options",
    "prompt_cache_key",
];

/// `upstream_model` is the already-resolved GLM model name; `request_id` is the gateway's id for
/// this upstream attempt (always sent as Zhipu's `request_id`, overriding a client one, so
/// retries never reuse an id).
pub fn to_glm(
    req: ChatCompletionRequest,
    upstream_model: &str,
    request_id: &str,
) -> ApiResult<GlmChatRequest> {
    reject_unsupported(&req)?;
    let limits = params::ModelLimits::of(upstream_model);
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream
        && req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);

    let mut body = req.extra;
    for key in DROPPED {
        body.remove(*key);
    }
    body.insert("model".to_owned(), Value::from(upstream_model));
    body.insert("request_id".to_owned(), Value::from(request_id));
    body.insert(
        "messages".to_owned(),
        Value::Array(messages::to_glm(req.messages)?),
    );
    params::apply_temperature(&mut body, req.temperature, &limits)?;
    params::apply_top_p(&mut body, req.top_p)?;
    params::apply_max_tokens(
        &mut body,
        req.max_tokens,
        req.max_completion_tokens,
        &limits,
    )?;
    params::apply_stop(&mut body, req.stop)?;
    params::apply_user(&mut body, req.user, req.safety_identifier);
    let tool = tools::apply_tools(&mut body, req.tools, req.tool_choice)?;
    let schema = tools::apply_response_format(&mut body, req.response_format)?;
    let emulation = emulate::plan(Surface::Chat, &mut body, tool, schema)?;
    if stream {
        body.insert("stream".to_owned(), Value::Bool(true));
    }
    Ok(GlmChatRequest {
        body,
        stream,
        include_usage,
        emulation,
    })
}

/// Requests GLM cannot answer as asked: a 400 beats an answer that silently differs.
fn reject_unsupported(req: &ChatCompletionRequest) -> ApiResult<()> {
    let reject = |param: &str, message: &str| Err(ApiError::invalid_request(message).param(param));
    if req.n.is_some_and(|n| n != 1) {
        return reject("n", "GLM returns exactly one choice; n must be 1");
    }
    if req.logprobs == Some(true) {
        return reject("logprobs", "GLM does not return log probabilities");
    }
    if req.audio.is_some() {
        return reject("audio", "audio output is not supported by GLM chat models");
    }
    if req
        .modalities
        .as_ref()
        .is_some_and(|m| m.iter().any(|m| m == "audio"))
    {
        return reject(
            "modalities",
            "audio output is not supported by GLM chat models",
        );
    }
    // Legacy function calling is refused rather than translated: the answer would come back as
    // `tool_calls`, which clients that send `functions` do not read. A lone `function_call`
    // means nothing without `functions` and is dropped.
    if req.functions.as_ref().is_some_and(|f| !f.is_empty()) {
        return reject(
            "functions",
            "`functions` is deprecated and not supported; send `tools` instead",
        );
    }
    Ok(())
}

impl GlmChatRequest {
    /// Applies the `[emulation]` switches (see `emulate::settle`).
    pub fn settle_emulation(&mut self, config: &EmulationConfig) -> EmulationSwitches {
        emulate::settle(&mut self.emulation, &mut self.body, config)
    }
}

#[cfg(test)]
mod tests;
