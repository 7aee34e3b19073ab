//! Promises Zhipu cannot keep, kept by the gateway on plain answers: a JSON Schema and a forced
//! tool are checked, repaired by one more call when broken, and marked in the header and row.

use serde_json::{json, Value};

use crate::helpers::{request_id, row_of, spawn_app, Backend, TestApp};
use crate::on_both_backends;

fn schema_request(text: &str) -> Value {
    json!({
        "model": "glm-4.7",
        "messages": [{"role": "user", "content": text}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "strict": true,
            "schema": {"type": "object", "additionalProperties": false, "required": ["name", "population"],
                "properties": {"name": {"type": "string"}, "population": {"type": "integer"}}}}}
    })
}

fn chat_calls(app: &TestApp) -> usize {
    app.emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

/// The answer's content as JSON, and the header values.
async fn answer_of(response: reqwest::Response) -> (Value, Option<String>, Option<String>) {
    let (content, emulated, validation, _) = answer_and_usage(response).await;
    (content, emulated, validation)
}

async fn answer_and_usage(
    response: reqwest::Response,
) -> (Value, Option<String>, Option<String>, Value) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (emulated, validation) = (
        header("x-glm-gateway-emulated"),
        header("x-glm-gateway-validation"),
    );
    let body: Value = response.json().await.unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let content = serde_json::from_str(content).unwrap();
    (content, emulated, validation, body["usage"].clone())
}

async fn a_schema_answer_that_fits_goes_out_after_one_call(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app.chat(&key, schema_request("a city please")).await;
    let id = request_id(&response);
    let (content, emulated, validation) = answer_of(response).await;
    assert!(
        content["name"].is_string() && content["population"].is_i64(),
        "{content}"
    );
    assert_eq!(
        (emulated.as_deref(), validation),
        (Some("json_schema"), None)
    );
    assert_eq!(chat_calls(&app), 1);
    assert_eq!(
        row_of(&app.db, &id).await.emulated.as_deref(),
        Some("json_schema")
    );
    app.shutdown().await;
}

async fn a_broken_schema_answer_is_repaired_and_both_calls_count(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .chat(&key, schema_request("#bad-json a city please"))
        .await;
    let id = request_id(&response);
    let (content, emulated, validation, usage) = answer_and_usage(response).await;
    assert!(
        content["name"].is_string() && content["population"].is_i64(),
        "{content}"
    );
    assert_eq!(
        (emulated.as_deref(), validation),
        (Some("json_schema"), None)
    );
    let calls: Vec<Value> = app
        .emulator
        .requests()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(calls.len(), 2, "the answer and one repair call");
    let repair = calls[1]["messages"].as_array().unwrap();
    let last = repair.last().unwrap()["content"].as_str().unwrap();
    assert!(last.contains("did not match the schema"), "{last}");
    assert_ne!(calls[0]["request_id"], calls[1]["request_id"]);
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.emulated.as_deref(), Some("json_schema:repaired"));
    assert_eq!(row.usage_source, "upstream");
    assert_eq!(row.total_tokens, row.prompt_tokens + row.completion_tokens);
    // The client sees the repair call's usage; the row counts the first call's tokens too.
    let repair_prompt = usage["prompt_tokens"].as_i64().unwrap();
    assert!(
        row.prompt_tokens > repair_prompt && repair_prompt > 0,
        "{row:?} {usage}"
    );
    app.shutdown().await;
}

async fn an_answer_still_broken_after_repair_is_marked(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .chat(&key, schema_request("#always-bad-json a city"))
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let (_, emulated, validation) = answer_of(response).await;
    assert_eq!(
        (emulated.as_deref(), validation.as_deref()),
        (Some("json_schema"), Some("failed"))
    );
    assert_eq!(chat_calls(&app), 2);
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.emulated.as_deref(), Some("json_schema:invalid"));
    app.shutdown().await;
}

async fn a_named_tool_choice_is_kept_by_a_retry(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let tools = json!([
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}
    ]);
    let body = json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "hello"}],
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "weather"}}});
    let response = app.chat(&key, body).await;
    let id = request_id(&response);
    assert_eq!(response.headers()["x-glm-gateway-emulated"], "tool_choice");
    let answer: Value = response.json().await.unwrap();
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let first = &app.emulator.requests()[0].body;
    assert_eq!(
        first["tools"].as_array().unwrap().len(),
        1,
        "only the named tool is sent"
    );
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.emulated.as_deref(), Some("tool_choice:repaired"));
    app.shutdown().await;
}

async fn emulation_switched_off_for_a_model_sends_the_plain_downgrade(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |config| {
        config.emulation = glm_gateway::config::Config::from_toml(
            "[emulation.models.\"glm-4.7\"]\njson_schema = false\n",
            &|_| None,
        )
        .unwrap()
        .emulation;
    })
    .await;
    let key = app.key().await;
    let response = app
        .chat(&key, schema_request("#always-bad-json a city"))
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-glm-gateway-emulated").is_none());
    let sent = &app.emulator.requests()[0].body;
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    assert_eq!(chat_calls(&app), 1, "no check, no repair");
    app.shutdown().await;
}

on_both_backends!(
    a_schema_answer_that_fits_goes_out_after_one_call,
    a_broken_schema_answer_is_repaired_and_both_calls_count,
    an_answer_still_broken_after_repair_is_marked,
    a_named_tool_choice_is_kept_by_a_retry,
    emulation_switched_off_for_a_model_sends_the_plain_downgrade,
);
