//! Zhipu's non-stream chat answer as OpenAI's `chat.completion`, and the finish-reason mapping the
//! stream rewriter shares. Rewrites the parsed body in place; nothing is copied.

use serde_json::Value;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::upstream::map_zhipu_value;

/// A Zhipu `finish_reason` as OpenAI clients may see it.
pub(crate) enum FinishReason {
    Mapped(&'static str),
    /// Zhipu's `network_error` has no OpenAI equivalent: the answer is broken, so it becomes an
    /// error (a 502, or an error event mid-stream).
    NetworkError,
}

/// OpenAI's types allow only stop/length/tool_calls/content_filter/function_call; strongly typed
/// clients reject anything else, so unknown reasons become `stop`.
pub(crate) fn map_finish_reason(reason: &str) -> FinishReason {
    FinishReason::Mapped(match reason {
        "length" | "model_context_window_exceeded" => "length",
        "tool_calls" => "tool_calls",
        "sensitive" => "content_filter",
        "network_error" => return FinishReason::NetworkError,
        _ => "stop",
    })
}

pub(crate) fn network_error() -> ApiError {
    ApiError::new(
        ErrorCode::UpstreamNetworkError,
        "the upstream model reported a network error before the answer was complete",
    )
}

/// Tool calls need `"type":"function"`; OpenAI clients switch on it.
pub(crate) fn ensure_function_type(call: &mut Value) {
    if let Some(call) = call.as_object_mut() {
        call.entry("type")
            .or_insert_with(|| Value::from("function"));
    }
}

/// Turns a parsed Zhipu chat answer (HTTP 200) into an OpenAI `chat.completion`. An `error`
/// inside the body (Zhipu sometimes answers errors with 200) becomes that error.
pub fn from_glm(mut glm: Value) -> ApiResult<Value> {
    if glm.get("error").is_some_and(|e| !e.is_null()) {
        return Err(map_zhipu_value(200, &glm));
    }
    let Some(answer) = glm.as_object_mut() else {
        return Err(ApiError::new(
            ErrorCode::UpstreamInvalidResponse,
            "upstream answered with a body that is not a JSON object",
        ));
    };
    answer.insert("object".to_owned(), Value::from("chat.completion"));
    if let Some(Value::Array(choices)) = answer.get_mut("choices") {
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            let reason = match choice.get("finish_reason").and_then(Value::as_str) {
                Some(reason) => map_finish_reason(reason),
                None => FinishReason::Mapped("stop"),
            };
            let FinishReason::Mapped(reason) = reason else {
                return Err(network_error());
            };
            choice.insert("finish_reason".to_owned(), Value::from(reason));
            let calls = choice
                .get_mut("message")
                .and_then(|m| m.get_mut("tool_calls"));
            if let Some(Value::Array(calls)) = calls {
                calls.iter_mut().for_each(ensure_function_type);
            }
        }
    }
    Ok(glm)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(finish: &str) -> Value {
        json!({
            "id": "20250926190537b4c5e1a3d5e34a0e",
            "request_id": "req-1",
            "created": 1758884737,
            "model": "glm-4.5",
            "choices": [{
                "index": 0,
                "finish_reason": finish,
                "message": {"role": "assistant", "content": "Olá!", "reasoning_content": "hi"}
            }],
            "usage": {"prompt_tokens": 16, "completion_tokens": 40, "total_tokens": 56,
                      "prompt_tokens_details": {"cached_tokens": 0}}
        })
    }

    fn finish_of(glm: Value) -> Value {
        let out = from_glm(glm).expect("mapped");
        out["choices"][0]["finish_reason"].clone()
    }

    #[test]
    fn adds_object_and_keeps_the_rest() {
        let out = from_glm(answer("stop")).expect("mapped");
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(out["choices"][0]["message"]["content"], "Olá!");
        assert_eq!(out["usage"]["total_tokens"], 56);
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(out["request_id"], "req-1");
    }

    #[test]
    fn maps_finish_reasons() {
        assert_eq!(finish_of(answer("sensitive")), "content_filter");
        assert_eq!(finish_of(answer("model_context_window_exceeded")), "length");
        assert_eq!(finish_of(answer("length")), "length");
        assert_eq!(finish_of(answer("tool_calls")), "tool_calls");
        assert_eq!(finish_of(answer("something_new")), "stop");
        let mut missing = answer("stop");
        missing["choices"][0]["finish_reason"] = Value::Null;
        assert_eq!(finish_of(missing), "stop");
    }

    #[test]
    fn network_error_is_a_502() {
        let e = from_glm(answer("network_error")).expect_err("error");
        assert_eq!(e.status().as_u16(), 502);
        assert_eq!(Some(e.code.as_str()), Some("upstream_network_error"));
    }

    #[test]
    fn tool_calls_get_a_type() {
        let mut glm = answer("tool_calls");
        glm["choices"][0]["message"]["tool_calls"] = json!([
            {"id": "call_1", "index": 0, "function": {"name": "weather", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}
        ]);
        let out = from_glm(glm).expect("mapped");
        let calls = &out["choices"][0]["message"]["tool_calls"];
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[1]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "weather");
    }

    #[test]
    fn an_error_inside_a_200_is_an_error() {
        let glm = json!({"error": {"code": "1113", "message": "余额不足"}});
        let e = from_glm(glm).expect_err("error");
        assert_eq!(e.status().as_u16(), 429);
        assert_eq!(Some(e.code.as_str()), Some("insufficient_quota"));
        let e = from_glm(json!({"error": "boom"})).expect_err("error");
        assert_eq!(e.status().as_u16(), 502);
    }

    #[test]
    fn a_non_object_is_a_502() {
        let e = from_glm(json!([1, 2])).expect_err("error");
        assert_eq!(e.status().as_u16(), 502);
    }
}
