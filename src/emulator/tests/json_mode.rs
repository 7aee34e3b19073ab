//! The model-like paths: calling a tool the user names, JSON answers in `json_object` mode
//! (schema instances, `#bad-json` repair), and message fields Zhipu rejects.

use serde_json::{json, Value};

use super::{ask, error_code, sse_events, Emulator};

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "Get_Weather", "description": "Weather",
        "parameters": {"type": "object", "required": ["city", "unit"], "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer", "minimum": 3}, "hourly": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}}}}}}])
}

#[tokio::test]
async fn naming_a_tool_calls_it() {
    let emu = Emulator::start().await;
    let mut body = ask("please use get_weather for Paris");
    body["tools"] = weather_tool();
    let answer: Value = emu.chat(&body).await.json().await.expect("json");
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let function = &choice["message"]["tool_calls"][0]["function"];
    assert_eq!(function["name"], "Get_Weather");
    let args: Value =
        serde_json::from_str(function["arguments"].as_str().expect("string")).expect("json");
    assert_eq!(
        args,
        json!({"city": "emulated", "unit": "c", "days": 3, "hourly": true,
            "tags": ["emulated"], "where": {"lat": 1.0}})
    );

    body["stream"] = json!(true);
    let text = emu.chat(&body).await.text().await.expect("body");
    let events = sse_events(&text);
    assert_eq!(events.len(), 3, "{text}");
    let first: Value = serde_json::from_str(&events[0]).expect("json");
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        first["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "Get_Weather"
    );
    let second: Value = serde_json::from_str(&events[1]).expect("json");
    assert_eq!(second["choices"][0]["finish_reason"], "tool_calls");
    assert!(second["usage"]["total_tokens"].is_u64());

    let mut plain = ask("what is the weather like?");
    plain["tools"] = weather_tool();
    let answer: Value = emu.chat(&plain).await.json().await.expect("json");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
}

fn json_request(system: &str, user: &str) -> Value {
    json!({"model": "glm-4.5", "response_format": {"type": "json_object"}, "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": user}]})
}

async fn content(emu: &Emulator, body: &Value) -> Value {
    let answer: Value = emu.chat(body).await.json().await.expect("json");
    let text = answer["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    serde_json::from_str(text).expect("content is JSON")
}

const SCHEMA_PROMPT: &str = r##"Answer as JSON matching this schema: {"type": "object",
"properties": {"name": {"type": "string"}, "pet": {"$ref": "#/$defs/Pet"},
"age": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}, "required": ["name", "pet"],
"additionalProperties": false, "$defs": {"Pet": {"type": "object", "properties": {
"kind": {"enum": ["cat", "dog"]}}, "required": ["kind"]}}} and nothing else."##;

#[tokio::test]
async fn json_mode_answers_schema_instances() {
    let emu = Emulator::start().await;
    let body = json_request(SCHEMA_PROMPT, "Tell me about Ann");
    let expected = json!({"name": "emulated", "pet": {"kind": "cat"}, "age": 1});
    assert_eq!(content(&emu, &body).await, expected);
    let body = json_request("Reply in JSON.", "Tell me about {Ann}");
    assert_eq!(
        content(&emu, &body).await,
        json!({"answer": "Tell me about {Ann}"})
    );
}

#[tokio::test]
async fn bad_json_is_repaired_when_asked() {
    let emu = Emulator::start().await;
    let mut body = json_request(SCHEMA_PROMPT, "Tell me about Ann #bad-json");
    let bad = content(&emu, &body).await;
    assert!(
        bad.get("name").is_none() && bad.get("pet").is_none(),
        "{bad}"
    );
    if let Some(messages) = body["messages"].as_array_mut() {
        messages.push(json!({"role": "assistant", "content": bad.to_string()}));
        messages.push(json!({"role": "user", "content": "Your answer did not match the schema."}));
    }
    assert!(content(&emu, &body).await.get("pet").is_some());
    body["messages"][1]["content"] = json!("Tell me about Ann #always-bad-json");
    assert!(content(&emu, &body).await.get("pet").is_none());
}

#[tokio::test]
async fn openai_only_message_fields_are_rejected() {
    let emu = Emulator::start().await;
    for (role, field) in [
        ("assistant", "parsed"),
        ("assistant", "refusal"),
        ("assistant", "annotations"),
        ("assistant", "audio"),
        ("assistant", "function_call"),
        ("user", "name"),
        ("system", "name"),
    ] {
        let mut body = ask("hi");
        let mut message = json!({"role": role, "content": "x"});
        message[field] = json!(null);
        body["messages"] = json!([message, {"role": "user", "content": "hi"}]);
        assert_eq!(
            error_code(emu.chat(&body).await).await,
            (400, "1214".to_owned()),
            "{field}"
        );
    }
}
