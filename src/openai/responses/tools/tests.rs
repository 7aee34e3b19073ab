use serde_json::{json, Value};

use crate::config::{Config, EmulationConfig};
use crate::openai::responses::{to_zhipu, ResponsesPlan};

fn plan(body: Value) -> ResponsesPlan {
    to_zhipu(body, "glm-4.7", true).unwrap()
}

fn schema() -> Value {
    json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
        "additionalProperties": false})
}

fn with_schema() -> Value {
    json!({"input": "x", "instructions": "Be terse.",
        "text": {"format": {"type": "json_schema", "name": "num", "schema": schema()},
            "verbosity": "low"}})
}

fn tools() -> Value {
    json!([{"type": "function", "name": "lookup", "parameters": {"type": "object"}},
        {"type": "function", "name": "clock"}, {"type": "web_search"}])
}

fn config(toml: &str) -> EmulationConfig {
    Config::from_toml(toml, &|_| None).unwrap().emulation
}

fn text(content: &str) -> Value {
    json!({"object": "response", "output": [{"type": "reasoning", "summary": []},
        {"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": content, "annotations": []}]}]})
}

fn call(name: &str, arguments: &str) -> Value {
    json!({"object": "response", "output": [{"type": "function_call", "call_id": "call_1",
        "name": name, "arguments": arguments}]})
}

#[test]
fn json_schema_becomes_json_object_and_the_schema_goes_first_in_instructions() {
    let p = plan(with_schema());
    assert_eq!(p.body["text"], json!({"format": {"type": "json_object"}}));
    let instructions = p.body["instructions"].as_str().unwrap();
    assert!(
        instructions.contains(&schema().to_string()),
        "{instructions}"
    );
    assert!(instructions.contains("`num`") && instructions.ends_with("\n\nBe terse."));
    assert_eq!(p.emulation.unwrap().header_value(), "json_schema");

    let bad = json!({"input": "x", "text": {"format": {"type": "json_schema", "name": "n",
        "schema": {"type": "no-such-type"}}}});
    let error = to_zhipu(bad, "glm-4.7", true).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("text.format.schema"));
    let schemaless =
        json!({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}});
    assert!(plan(schemaless).emulation.is_none());
}

#[test]
fn a_forced_tool_choice_is_downgraded_to_auto_and_demanded() {
    let named = json!({"input": "x", "tools": tools(),
        "tool_choice": {"type": "function", "name": "lookup"}});
    let p = plan(named);
    assert_eq!(p.body["tool_choice"], "auto");
    assert_eq!(
        p.body["tools"],
        json!([tools()[0]]),
        "only the named tool is sent"
    );
    assert!(p.body["instructions"]
        .as_str()
        .unwrap()
        .contains("`lookup`"));
    assert_eq!(p.emulation.unwrap().header_value(), "tool_choice");

    for required in [
        json!("required"),
        json!({"type": "allowed_tools", "mode": "required", "tools": []}),
    ] {
        let p = plan(json!({"input": "x", "tools": tools(), "tool_choice": required}));
        assert_eq!(p.body["tools"].as_array().map(Vec::len), Some(3));
        assert!(p.emulation.is_some(), "{required}");
    }
    for free in [json!("auto"), json!("none"), json!({"type": "web_search"})] {
        let p = plan(json!({"input": "x", "tools": tools(), "tool_choice": free}));
        assert!(p.emulation.is_none() && !p.body.contains_key("instructions"));
    }
    let p = plan(json!({"input": "x", "tool_choice": "required"}));
    assert!(p.emulation.is_none() && !p.body.contains_key("tool_choice"));
    let search = json!([{"type": "web_search"}]);
    let p = plan(json!({"input": "x", "tools": search, "tool_choice": "required"}));
    assert!(p.emulation.is_none(), "no function to demand a call of");

    let unknown = json!({"input": "x", "tools": tools(),
        "tool_choice": {"type": "function", "name": "nope"}});
    let error = to_zhipu(unknown, "glm-4.7", true).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("tool_choice"));
}

#[test]
fn switched_off_the_rewrite_is_undone() {
    let mut p = plan(with_schema());
    p.settle_emulation(&config(
        "[emulation.models.\"glm-4.7\"]\njson_schema = false",
    ));
    assert!(p.emulation.is_none());
    assert_eq!(p.body["instructions"], "Be terse.");
    assert_eq!(p.body["text"], json!({"format": {"type": "json_object"}}));

    let named = json!({"input": "x", "tools": tools(),
        "tool_choice": {"type": "function", "name": "lookup"}});
    let mut p = plan(named.clone());
    p.settle_emulation(&config(
        "[emulation.models.\"glm-4.7\"]\njson_schema = false",
    ));
    assert!(p.emulation.is_some(), "only json_schema is off");
    let mut p = plan(named);
    p.settle_emulation(&config("[emulation]\ntool_choice = false"));
    assert!(p.emulation.is_none() && !p.body.contains_key("instructions"));
    assert_eq!(p.body["tools"], tools());
    assert_eq!(p.body["tool_choice"], "auto");
}

#[test]
fn responses_answers_are_checked_like_chat_answers() {
    let schema = plan(with_schema()).emulation.unwrap();
    assert_eq!(schema.validate(&text(r#"{"n": 3}"#)), Ok(()));
    let errors = schema.validate(&text(r#"{"n": "3"}"#)).unwrap_err();
    assert!(errors[0].contains("/n"), "{errors:?}");
    assert!(schema.validate(&text("")).is_err());
    assert_eq!(schema.validate(&call("lookup", "{}")), Ok(()));

    let named = json!({"input": "x", "tools": tools(),
        "tool_choice": {"type": "function", "name": "lookup"}});
    let tool = plan(named).emulation.unwrap();
    assert_eq!(tool.validate(&call("lookup", r#"{"q": 1}"#)), Ok(()));
    assert!(tool.validate(&call("clock", "{}")).unwrap_err()[0].contains("`clock`"));
    assert!(tool.validate(&call("lookup", "[1]")).is_err());
    assert!(tool.validate(&text("sure")).unwrap_err()[0].contains("`lookup`"));
}

#[test]
fn the_repair_call_appends_the_answer_and_the_errors_to_the_input() {
    let mut request = with_schema();
    request["stream"] = json!(true);
    let p = plan(request);
    let emulation = p.emulation.as_ref().unwrap();
    let bad = text(r#"{"n": "3"}"#);
    let errors = emulation.validate(&bad).unwrap_err();
    let repair = emulation.repair_body(&p.body, &bad, &errors);
    assert!(!repair.contains_key("stream") && !repair.contains_key("request_id"));
    assert_eq!(repair["instructions"], p.body["instructions"]);
    let input = repair["input"].as_array().unwrap();
    assert_eq!(input.len(), 3);
    assert_eq!(input[0], json!({"role": "user", "content": "x"}));
    assert_eq!(
        input[1],
        json!({"role": "assistant", "content": r#"{"n": "3"}"#})
    );
    let ask = input[2]["content"].as_str().unwrap();
    assert!(ask.contains("did not match the schema") && ask.contains(&errors[0]));
    assert_eq!(p.body["input"], "x", "the first body is untouched");
}
