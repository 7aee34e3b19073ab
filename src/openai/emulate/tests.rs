use serde_json::json;

use super::*;
use crate::config::{Config, EmulationConfig};
use crate::openai::body::parse;
use crate::openai::chat::{to_glm, GlmChatRequest};
use crate::openai::request::ChatCompletionRequest;

fn glm(extra: Value) -> ApiResult<GlmChatRequest> {
    let mut body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hi"}
    ]});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let request: ChatCompletionRequest = parse(body.to_string().as_bytes()).expect("parses");
    to_glm(request, "glm-4.7", "req-1")
}

fn schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
           "required": ["city", "temp"], "additionalProperties": false})
}

fn with_schema() -> Value {
    json!({"response_format": {"type": "json_schema",
        "json_schema": {"name": "weather", "strict": true, "schema": schema()}}})
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "time"}}
    ])
}

fn answer(message: Value) -> Value {
    json!({"object": "chat.completion", "choices": [{"index": 0, "message": message,
           "finish_reason": "stop"}]})
}

fn text(content: &str) -> Value {
    answer(json!({"role": "assistant", "content": content}))
}

fn call(name: &str, arguments: &str) -> Value {
    answer(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    ]}))
}

fn config(toml: &str) -> EmulationConfig {
    Config::from_toml(toml, &|_| None)
        .expect("config")
        .emulation
}

#[test]
fn json_schema_becomes_json_object_plus_the_schema_verbatim() {
    let out = glm(with_schema()).expect("valid");
    assert_eq!(out.body["response_format"], json!({"type": "json_object"}));
    let messages = out.body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["role"], "system");
    let instruction = messages[0]["content"].as_str().expect("text");
    assert!(instruction.contains(&schema().to_string()), "{instruction}");
    assert!(instruction.contains("`weather`"));
    assert_eq!(messages[1]["content"], "be nice");
    let emulation = out.emulation.expect("emulated");
    assert_eq!(emulation.header_value(), "json_schema");
}

#[test]
fn json_object_and_schemaless_json_schema_are_not_emulated() {
    let out = glm(json!({"response_format": {"type": "json_object"}})).expect("valid");
    assert!(out.emulation.is_none());
    let out =
        glm(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}))
            .expect("valid");
    assert!(out.emulation.is_none());
    assert_eq!(out.body["messages"].as_array().map(Vec::len), Some(2));
}

#[test]
fn an_invalid_schema_is_400() {
    let format = json!({"response_format": {"type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "no-such-type"}}}});
    let e = glm(format).expect_err("bad schema");
    assert_eq!(
        e.param.as_deref(),
        Some("response_format.json_schema.schema")
    );
}

#[test]
fn a_named_tool_choice_sends_only_that_tool_and_asks_for_it() {
    let choice = json!({"type": "function", "function": {"name": "weather"}});
    let out = glm(json!({"tools": tools(), "tool_choice": choice})).expect("valid");
    let sent = out.body["tools"].as_array().expect("tools");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["function"]["name"], "weather");
    assert_eq!(out.body["tool_choice"], "auto");
    let instruction = out.body["messages"][0]["content"].as_str().expect("text");
    assert!(instruction.contains("`weather`"), "{instruction}");
    assert_eq!(
        out.emulation.expect("emulated").header_value(),
        "tool_choice"
    );

    let missing = json!({"type": "function", "function": {"name": "nope"}});
    let e = glm(json!({"tools": tools(), "tool_choice": missing})).expect_err("unknown tool");
    assert_eq!(e.param.as_deref(), Some("tool_choice"));
}

#[test]
fn required_keeps_every_tool_and_asks_for_a_call_and_none_sends_none() {
    let out = glm(json!({"tools": tools(), "tool_choice": "required"})).expect("valid");
    assert_eq!(out.body["tools"].as_array().map(Vec::len), Some(2));
    assert_eq!(out.body["messages"][0]["role"], "system");
    assert!(out.emulation.is_some());
    let out = glm(json!({"tools": tools(), "tool_choice": "none"})).expect("valid");
    assert!(!out.body.contains_key("tools") && out.emulation.is_none());
    let out = glm(json!({"tools": tools(), "tool_choice": "auto"})).expect("valid");
    assert!(out.emulation.is_none());
    let search = json!([{"type": "web_search", "web_search": {"enable": true}}]);
    let out = glm(json!({"tools": search, "tool_choice": "required"})).expect("valid");
    assert!(out.emulation.is_none(), "no function to demand a call of");
}

#[test]
fn a_forced_tool_wins_over_a_schema() {
    let mut request = with_schema();
    request["tools"] = tools();
    request["tool_choice"] = json!("required");
    let out = glm(request).expect("valid");
    assert_eq!(
        out.emulation.expect("emulated").header_value(),
        "tool_choice"
    );
    assert_eq!(out.body["messages"].as_array().map(Vec::len), Some(3));
}

#[test]
fn switched_off_per_model_the_rewrite_is_undone() {
    let mut out = glm(with_schema()).expect("valid");
    let switches = out.settle_emulation(&config(""));
    assert!(out.emulation.is_some());
    assert_eq!(switches.repair_attempts, 1);

    let off = config("[emulation.models.\"glm-4.7\"]\njson_schema = false");
    let mut out = glm(with_schema()).expect("valid");
    out.settle_emulation(&off);
    assert!(out.emulation.is_none());
    assert_eq!(out.body["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(out.body["response_format"], json!({"type": "json_object"}));

    let choice = json!({"type": "function", "function": {"name": "time"}});
    let mut out = glm(json!({"tools": tools(), "tool_choice": choice})).expect("valid");
    out.settle_emulation(&off);
    assert!(out.emulation.is_some(), "only json_schema is off");
    out.settle_emulation(&config("[emulation]\ntool_choice = false"));
    assert!(out.emulation.is_none());
    assert_eq!(out.body["tools"].as_array().map(Vec::len), Some(2));
    assert_eq!(out.body["messages"][0]["content"], "be nice");
}

#[test]
fn json_answers_are_checked_against_the_schema() {
    let emulation = glm(with_schema())
        .expect("valid")
        .emulation
        .expect("emulated");
    assert_eq!(
        emulation.validate(&text(r#"{"city": "Paris", "temp": 21.5}"#)),
        Ok(())
    );
    let errors = emulation
        .validate(&text(r#"{"city": 5, "temp": 1, "wind": 3}"#))
        .expect_err("invalid");
    assert!(errors.iter().any(|e| e.contains("/city")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("wind")), "{errors:?}");
    let errors = emulation
        .validate(&text("```json\n{}\n```"))
        .expect_err("not JSON");
    assert!(errors[0].contains("not valid JSON"), "{errors:?}");
    assert!(emulation.validate(&text("")).is_err());
    assert!(emulation.validate(&json!({})).is_err());
    assert_eq!(
        emulation.validate(&call("weather", "{}")),
        Ok(()),
        "a tool call is no final answer"
    );
}

#[test]
fn tool_answers_must_call_the_demanded_function_with_json_arguments() {
    let choice = json!({"type": "function", "function": {"name": "weather"}});
    let named = glm(json!({"tools": tools(), "tool_choice": choice}))
        .expect("valid")
        .emulation
        .expect("emulated");
    assert_eq!(
        named.validate(&call("weather", r#"{"city":"Paris"}"#)),
        Ok(())
    );
    assert!(named.validate(&text("It is sunny.")).expect_err("no call")[0].contains("`weather`"));
    assert!(named.validate(&call("time", "{}")).expect_err("wrong")[0].contains("`time`"));
    assert!(named.validate(&call("weather", "{oops")).is_err());

    let required = glm(json!({"tools": tools(), "tool_choice": "required"}))
        .expect("valid")
        .emulation
        .expect("emulated");
    assert_eq!(required.validate(&call("time", "{}")), Ok(()));
    assert!(required.validate(&text("no")).is_err());
}

#[test]
fn the_repair_call_carries_the_answer_and_the_errors() {
    let mut request = with_schema();
    request["stream"] = json!(true);
    let out = glm(request).expect("valid");
    let emulation = out.emulation.as_ref().expect("emulated");
    let bad = text(r#"{"city": 5}"#);
    let errors = emulation.validate(&bad).expect_err("invalid");
    let repair = emulation.repair_body(&out.body, &bad, &errors);
    assert!(!repair.contains_key("stream"));
    assert_ne!(repair["request_id"], out.body["request_id"]);
    assert_eq!(repair["response_format"], json!({"type": "json_object"}));
    let messages = repair["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 5);
    assert_eq!(
        messages[3],
        json!({"role": "assistant", "content": r#"{"city": 5}"#})
    );
    assert_eq!(messages[4]["role"], "user");
    let ask = messages[4]["content"].as_str().expect("text");
    assert!(
        ask.contains(&errors[0]) && ask.contains("only the corrected JSON"),
        "{ask}"
    );
    assert_eq!(
        out.body["messages"].as_array().map(Vec::len),
        Some(3),
        "original untouched"
    );

    let choice = json!({"type": "function", "function": {"name": "weather"}});
    let out = glm(json!({"tools": tools(), "tool_choice": choice})).expect("valid");
    let emulation = out.emulation.as_ref().expect("emulated");
    let bad = text("");
    let errors = emulation.validate(&bad).expect_err("no call");
    let repair = emulation.repair_body(&out.body, &bad, &errors);
    let messages = repair["messages"].as_array().expect("messages");
    assert_eq!(messages[messages.len() - 2]["content"], "(no text)");
    let ask = messages[messages.len() - 1]["content"]
        .as_str()
        .expect("text");
    assert!(ask.contains("Call the function `weather` now"), "{ask}");
    assert_eq!(repair["tools"].as_array().map(Vec::len), Some(1));
}
