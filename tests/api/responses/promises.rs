//! `json_schema` and a forced `tool_choice` on `/v1/responses`, emulated as for chat: checked,
//! repaired, marked in the header and the row, and switched off by the same `[emulation]`.

use serde_json::{json, Value};

use super::{create, frames, output_text, upstream_calls};
use crate::helpers::{request_id, row_of, spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

fn schema_request(model: &str, input: &str) -> Value {
    json!({"model": model, "input": input, "instructions": "Be brief.",
        "text": {"format": {"type": "json_schema", "name": "city", "strict": true,
            "schema": {"type": "object", "additionalProperties": false,
                "required": ["name", "population"],
                "properties": {"name": {"type": "string"}, "population": {"type": "integer"}}}}}})
}

fn tool_request(model: &str, input: &str, choice: Value) -> Value {
    let tools = json!([
        {"type": "function", "name": "weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"type": "function", "name": "clock", "parameters": {"type": "object"}}
    ]);
    json!({"model": model, "input": input, "tools": tools, "tool_choice": choice})
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    let value = response.headers().get(name);
    value.map(|v| v.to_str().unwrap().to_owned())
}

/// The request id, `x-glm-gateway-emulated`, `x-glm-gateway-validation` and the body.
async fn sent(
    app: &TestApp,
    key: &str,
    body: Value,
) -> (String, Option<String>, Option<String>, Value) {
    let response = create(app, key, body).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let emulated = header(&response, "x-glm-gateway-emulated");
    let validation = header(&response, "x-glm-gateway-validation");
    (id, emulated, validation, response.json().await.unwrap())
}

fn is_city(text: &str) -> bool {
    let city: Value = serde_json::from_str(text).unwrap();
    let fields: Vec<&String> = city.as_object().unwrap().keys().collect();
    city["name"].is_string() && city["population"].is_i64() && fields.len() == 2
}

async fn a_json_schema_answer_is_checked_and_repaired(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let (id, emulated, validation, body) =
        sent(&app, &key, schema_request("glm-4.7", "a city please")).await;
    assert_eq!(
        (emulated.as_deref(), validation),
        (Some("json_schema"), None)
    );
    assert!(is_city(&output_text(&body)), "{body}");
    assert_eq!(
        body["text"]["format"]["type"], "json_schema",
        "the client's format echoed"
    );
    let first = app.emulator.requests().pop().unwrap().body;
    assert_eq!(first["text"], json!({"format": {"type": "json_object"}}));
    let instructions = first["instructions"].as_str().unwrap();
    assert!(instructions.contains("\"population\"") && instructions.ends_with("Be brief."));
    assert_eq!(
        row_of(&app.db, &id).await.emulated.as_deref(),
        Some("json_schema")
    );
    assert_eq!(upstream_calls(&app), 1);

    let (id, emulated, validation, body) =
        sent(&app, &key, schema_request("glm-4.7", "#bad-json a city")).await;
    assert_eq!(
        (emulated.as_deref(), validation),
        (Some("json_schema"), None)
    );
    assert!(is_city(&output_text(&body)), "{body}");
    assert_eq!(upstream_calls(&app), 3, "the answer and one repair call");
    let repair = app.emulator.requests().pop().unwrap().body;
    let input = repair["input"].as_array().unwrap();
    assert_eq!(
        input[0],
        json!({"role": "user", "content": "#bad-json a city"})
    );
    assert_eq!(input[1]["role"], "assistant");
    let ask = input[2]["content"].as_str().unwrap();
    assert!(ask.contains("did not match the schema"), "{ask}");
    assert!(repair.get("stream").is_none());
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.emulated.as_deref(), Some("json_schema:repaired"));
    // The client sees the repair call's usage; the row counts the first call's tokens too.
    let seen = body["usage"]["input_tokens"].as_i64().unwrap();
    assert!(row.prompt_tokens > seen && seen > 0, "{row:?} {body}");
    assert_eq!(row.total_tokens, row.prompt_tokens + row.completion_tokens);

    let (id, emulated, validation, body) = sent(
        &app,
        &key,
        schema_request("glm-4.7", "#always-bad-json a city"),
    )
    .await;
    assert_eq!(
        (emulated.as_deref(), validation.as_deref()),
        (Some("json_schema"), Some("failed"))
    );
    assert!(
        !is_city(&output_text(&body)),
        "the last answer goes out as it is"
    );
    assert_eq!(upstream_calls(&app), 5);
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.emulated.as_deref(), Some("json_schema:invalid"));
    app.shutdown().await;
}

async fn a_forced_tool_choice_answers_with_a_call_of_that_function(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let named = json!({"type": "function", "name": "weather"});
    let (id, emulated, validation, body) =
        sent(&app, &key, tool_request("glm-4.7", "hello", named)).await;
    assert_eq!(
        (emulated.as_deref(), validation),
        (Some("tool_choice"), None)
    );
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{body}");
    assert_eq!(
        (&output[0]["type"], &output[0]["name"]),
        (&json!("function_call"), &json!("weather"))
    );
    let arguments: Value = serde_json::from_str(output[0]["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["city"].is_string());
    let calls = app.emulator.requests();
    assert_eq!(calls.len(), 2, "the text answer and one repair call");
    let first = &calls[0].body;
    assert_eq!(first["tool_choice"], "auto");
    assert_eq!(
        first["tools"].as_array().map(Vec::len),
        Some(1),
        "only the named tool is sent"
    );
    assert!(first["instructions"]
        .as_str()
        .unwrap()
        .contains("`weather`"));
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.emulated.as_deref(), Some("tool_choice:repaired"));

    let (id, emulated, validation, body) = sent(
        &app,
        &key,
        tool_request("glm-4.7", "#tool", json!("required")),
    )
    .await;
    assert_eq!(
        (emulated.as_deref(), validation),
        (Some("tool_choice"), None)
    );
    assert_eq!(body["output"][0]["type"], "function_call");
    assert_eq!(upstream_calls(&app), 3, "kept at once");
    assert_eq!(
        row_of(&app.db, &id).await.emulated.as_deref(),
        Some("tool_choice")
    );
    app.shutdown().await;
}

async fn switched_off_emulation_sends_the_plain_downgrade_as_chat_does(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        let toml = "[emulation]\ntool_choice = false\n\
            [emulation.models.\"glm-4.7\"]\njson_schema = false\n";
        config.emulation = glm_gateway::config::Config::from_toml(toml, &|_| None)
            .unwrap()
            .emulation;
    })
    .await;
    let key = app.key().await;
    let (id, emulated, validation, body) = sent(
        &app,
        &key,
        schema_request("glm-4.7", "#always-bad-json a city"),
    )
    .await;
    assert_eq!((emulated, validation), (None, None), "off for glm-4.7");
    assert!(!is_city(&output_text(&body)), "unchecked");
    let first = app.emulator.requests().pop().unwrap().body;
    assert_eq!(first["text"], json!({"format": {"type": "json_object"}}));
    assert_eq!(first["instructions"], "Be brief.");
    assert_eq!(upstream_calls(&app), 1, "no check, no repair");
    assert_eq!(row_of(&app.db, &id).await.emulated, None);

    let (_, emulated, _, _) = sent(&app, &key, schema_request("glm-4.6v", "a city")).await;
    assert_eq!(
        emulated.as_deref(),
        Some("json_schema"),
        "still on for other models"
    );

    let named = json!({"type": "function", "name": "weather"});
    let (id, emulated, validation, body) =
        sent(&app, &key, tool_request("glm-4.6v", "hello", named)).await;
    assert_eq!((emulated, validation), (None, None), "off everywhere");
    assert_eq!(body["output"][0]["type"], "message");
    let first = app.emulator.requests().pop().unwrap().body;
    assert_eq!(first["tool_choice"], "auto");
    assert_eq!(
        first["tools"].as_array().map(Vec::len),
        Some(2),
        "every tool"
    );
    assert!(first.get("instructions").is_none());
    assert_eq!(upstream_calls(&app), 3);
    assert_eq!(row_of(&app.db, &id).await.emulated, None);
    app.shutdown().await;
}

async fn a_stream_gets_the_rewrite_and_the_mark_but_no_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let mut body = schema_request("glm-4.7", "#always-bad-json a city");
    body["stream"] = json!(true);
    let response = create(&app, &key, body).await;
    let id = request_id(&response);
    assert_eq!(
        header(&response, "x-glm-gateway-emulated").as_deref(),
        Some("json_schema")
    );
    assert_eq!(header(&response, "x-glm-gateway-validation"), None);
    let events = frames(&response.text().await.unwrap());
    let (last, terminal) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    assert!(
        !is_city(&output_text(&terminal["response"])),
        "sent as it came"
    );
    let sent = app.emulator.requests().pop().unwrap().body;
    assert_eq!(sent["text"], json!({"format": {"type": "json_object"}}));
    assert!(sent["instructions"]
        .as_str()
        .unwrap()
        .contains("\"population\""));
    assert_eq!(upstream_calls(&app), 1);
    let row = row_of(&app.db, &id).await;
    assert_eq!(
        (row.streamed, row.emulated.as_deref()),
        (true, Some("json_schema"))
    );
    app.shutdown().await;
}

on_both_backends!(
    a_json_schema_answer_is_checked_and_repaired,
    a_forced_tool_choice_answers_with_a_call_of_that_function,
    switched_off_emulation_sends_the_plain_downgrade_as_chat_does,
    a_stream_gets_the_rewrite_and_the_mark_but_no_check,
);
