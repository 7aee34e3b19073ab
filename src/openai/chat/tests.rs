use serde_json::json;

use super::*;
use crate::openai::body::parse;

fn request(extra: Value) -> ChatCompletionRequest {
    let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    parse::<ChatCompletionRequest>(body.to_string().as_bytes()).expect("parses")
}

fn glm(extra: Value, model: &str) -> ApiResult<GlmChatRequest> {
    to_glm(request(extra), model, "req-gw-1")
}

fn rejected(extra: Value) -> ApiError {
    glm(extra, "glm-4.5").expect_err("rejected")
}

#[test]
fn a_minimal_request() {
    let out = glm(json!({}), "glm-4.5").expect("valid");
    assert_eq!(
        Value::Object(out.body),
        json!({"model": "glm-4.5", "request_id": "req-gw-1",
               "messages": [{"role": "user", "content": "hi"}]})
    );
    assert!(!out.stream);
    assert!(!out.include_usage);
}

#[test]
fn pitfalls_1_to_4_in_one_request() {
    let out = glm(
        json!({"temperature": 0, "top_p": 1, "max_completion_tokens": 50000,
               "stop": "x", "user": "u1"}),
        "glm-4",
    )
    .expect("valid");
    let body = Value::Object(out.body);
    assert_eq!(body["do_sample"], false);
    assert!(body.get("temperature").is_none());
    assert_eq!(body["top_p"], json!(0.99));
    assert_eq!(body["max_tokens"], 8192);
    assert!(body.get("max_completion_tokens").is_none());
    assert_eq!(body["stop"], json!(["x"]));
    assert_eq!(body["user_id"], "user-u1");
    assert!(body.get("user").is_none());
}

#[test]
fn stream_and_usage_flags() {
    let out = glm(
        json!({"stream": true, "stream_options": {"include_usage": true}}),
        "glm-4.5",
    )
    .expect("valid");
    assert!(out.stream && out.include_usage);
    assert_eq!(out.body["stream"], true);
    assert!(!out.body.contains_key("stream_options"));
    let out = glm(
        json!({"stream": false, "stream_options": {"include_usage": true}}),
        "glm-4.5",
    )
    .expect("valid");
    assert!(!out.stream && !out.include_usage);
    assert!(!out.body.contains_key("stream"));
}

#[test]
fn glm_only_fields_pass_through_and_request_id_is_ours() {
    let out = glm(
        json!({"thinking": {"type": "disabled"}, "do_sample": true, "tool_stream": true,
               "meta": {"bot_name": "b"}, "request_id": "client-id", "user_id": "client-user"}),
        "glm-4.5",
    )
    .expect("valid");
    assert_eq!(out.body["thinking"], json!({"type": "disabled"}));
    assert_eq!(out.body["do_sample"], true);
    assert_eq!(out.body["tool_stream"], true);
    assert_eq!(out.body["meta"], json!({"bot_name": "b"}));
    assert_eq!(out.body["request_id"], "req-gw-1");
    assert_eq!(out.body["user_id"], "client-user");
}

#[test]
fn openai_only_knobs_are_dropped() {
    let out = glm(
        json!({"presence_penalty": 0.5, "frequency_penalty": 0.1, "seed": 7, "logit_bias": {},
               "parallel_tool_calls": true, "store": true, "metadata": {"a": "b"},
               "service_tier": "auto", "top_logprobs": 2, "logprobs": false, "n": 1,
               "prediction": {}, "reasoning_effort": "low", "verbosity": "low",
               "web_search_options": {}, "prompt_cache_key": "k", "modalities": ["text"],
               "function_call": "auto", "functions": []}),
        "glm-4.5",
    )
    .expect("valid");
    let keys: Vec<&str> = out.body.keys().map(String::as_str).collect();
    assert_eq!(keys, ["messages", "model", "request_id"]);
}

#[test]
fn unsupported_features_are_400_naming_the_field() {
    assert_eq!(rejected(json!({"n": 2})).param.as_deref(), Some("n"));
    assert_eq!(
        rejected(json!({"logprobs": true})).param.as_deref(),
        Some("logprobs")
    );
    assert_eq!(
        rejected(json!({"audio": {"voice": "alloy"}}))
            .param
            .as_deref(),
        Some("audio")
    );
    let e = rejected(json!({"modalities": ["text", "audio"]}));
    assert_eq!(e.param.as_deref(), Some("modalities"));
    let e = rejected(json!({"functions": [{"name": "f", "parameters": {}}]}));
    assert_eq!(e.param.as_deref(), Some("functions"));
    let e = rejected(json!({"stop": ["a", "b", "c", "d"]}));
    assert_eq!(e.param.as_deref(), Some("stop"));
}

#[test]
fn function_tools_are_completed_and_cleaned() {
    let out = glm(
        json!({"tools": [
            {"type": "function", "function": {"name": "weather", "strict": true}},
            {"type": "function", "function": {"name": "time", "description": "Current time",
              "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}},
            {"type": "web_search", "web_search": {"enable": true, "search_engine": "search_std"}}
        ], "tool_choice": "required"}),
        "glm-4.5",
    )
    .expect("valid");
    assert_eq!(
        out.body["tools"],
        json!([
            {"type": "function", "function": {"name": "weather", "description": "weather",
              "parameters": {"type": "object", "properties": {}}}},
            {"type": "function", "function": {"name": "time", "description": "Current time",
              "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}},
            {"type": "web_search", "web_search": {"enable": true, "search_engine": "search_std"}}
        ])
    );
    assert_eq!(out.body["tool_choice"], "auto");
}

#[test]
fn tool_choice_rules() {
    let tools = json!([{"type": "function", "function": {"name": "f", "description": "d"}}]);
    let named = json!({"type": "function", "function": {"name": "f"}});
    for choice in [json!("auto"), json!("required"), named] {
        let out = glm(json!({"tools": tools, "tool_choice": choice}), "glm-4.5").expect("valid");
        assert_eq!(out.body["tool_choice"], "auto", "{choice}");
    }
    let out = glm(json!({"tools": tools, "tool_choice": "none"}), "glm-4.5").expect("valid");
    assert!(!out.body.contains_key("tools") && !out.body.contains_key("tool_choice"));
    let out = glm(json!({"tools": tools}), "glm-4.5").expect("valid");
    assert!(out.body.contains_key("tools") && !out.body.contains_key("tool_choice"));
    let out = glm(json!({"tools": [], "tool_choice": "auto"}), "glm-4.5").expect("valid");
    assert!(!out.body.contains_key("tools") && !out.body.contains_key("tool_choice"));
    let e = rejected(json!({"tools": tools, "tool_choice": "always"}));
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
}

#[test]
fn custom_and_unknown_tools_are_400() {
    for tool in [
        json!({"type": "custom", "custom": {"name": "x"}}),
        json!({"type": "code_interpreter"}),
        json!({"function": {"name": "f"}}),
        json!({"type": "function", "function": {"description": "no name"}}),
    ] {
        let e = rejected(json!({"tools": [tool]}));
        assert_eq!(e.param.as_deref(), Some("tools"), "{}", e.message);
    }
}

#[test]
fn response_format_rules() {
    let out = glm(json!({"response_format": {"type": "text"}}), "glm-4.5").expect("valid");
    assert!(!out.body.contains_key("response_format"));
    for kind in ["json_object", "json_schema"] {
        let format = json!({"type": kind, "json_schema": {"name": "s", "schema": {}}});
        let out = glm(json!({"response_format": format}), "glm-4.5").expect("valid");
        assert_eq!(out.body["response_format"], json!({"type": "json_object"}));
    }
    let e = rejected(json!({"response_format": {"type": "xml"}}));
    assert_eq!(e.param.as_deref(), Some("response_format"));
}

#[test]
fn vision_request_reaches_zhipu_with_bare_base64() {
    let out = glm(
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
        ]}]}),
        "glm-4v-plus",
    )
    .expect("valid");
    assert_eq!(
        out.body["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "AAAA"}})
    );
}

#[test]
fn wrong_types_are_400_naming_the_field() {
    for (body, param) in [
        (
            json!({"model": "m", "messages": [], "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"model": "m", "messages": [{"role": 1}]}),
            "messages[0].role",
        ),
        (json!({"model": "m", "messages": [], "stop": 5}), "stop"),
        (
            json!({"model": "m", "messages": [], "max_tokens": 1.5}),
            "max_tokens",
        ),
    ] {
        let e =
            parse::<ChatCompletionRequest>(body.to_string().as_bytes()).expect_err("wrong type");
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
        assert!(
            e.message.starts_with("Invalid request body: "),
            "{}",
            e.message
        );
    }
    let body = br#"{"model": "m", "messages": [], "stop": 5}"#;
    let e = parse::<ChatCompletionRequest>(body).expect_err("wrong type");
    assert!(
        e.message.contains("a string or an array of strings"),
        "{}",
        e.message
    );
    let e = parse::<ChatCompletionRequest>(b"{\"messages\": []}").expect_err("no model");
    assert_eq!(e.status().as_u16(), 400);
    let e = parse::<ChatCompletionRequest>(b"not json").expect_err("garbage");
    assert_eq!(e.status().as_u16(), 400);
}

#[test]
fn empty_messages_are_400() {
    let e = rejected(json!({"messages": []}));
    assert_eq!(e.param.as_deref(), Some("messages"));
}
