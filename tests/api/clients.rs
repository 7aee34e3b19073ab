//! Real clients work unchanged: keys made by another process, the built-in model map, the model
//! list, `Authorization` spellings and messages as the OpenAI SDKs write them.

use std::time::{Duration, Instant};

use glm_gateway::config::Config;
use glm_gateway::keys::generate;
use glm_gateway::store::Db;
use serde_json::{json, Value};

use crate::helpers::{error_of, spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn get_models(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn model_ids(app: &TestApp, key: &str) -> Vec<String> {
    let list: Value = get_models(app, key, "/v1/models")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_key_inserted_by_another_process_works_at_once(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.server.key_refresh = Duration::from_secs(3600);
    })
    .await;
    // A separate pool stands in for `glm-gateway keys create` run elsewhere.
    let other = Db::connect(&app.database_url).await.unwrap();
    let generated = generate();
    other
        .insert_key(&crate::helpers::plain_key(
            &generated.id,
            "elsewhere",
            "t",
            &generated.secret_hash,
        ))
        .await
        .unwrap();
    app.get_text("/healthz").await; // the connection is open before the clock starts
    let started = Instant::now();
    let response = get_models(&app, &generated.full, "/v1/models").await;
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(took < Duration::from_millis(50), "accepted after {took:?}");
    assert_eq!(
        app.chat(&generated.full, hello("glm-4.7")).await.status(),
        200
    );

    // Unknown ids, well-formed or not, are still refused alike.
    let (_, secret) = generated.full.rsplit_once('-').unwrap();
    for wrong in [
        format!("sk-glm-zzzzzzzzzzzz-{secret}"),
        format!("sk-glm-{}-wrong", generated.id),
    ] {
        let response = app.chat(&wrong, hello("glm-4.7")).await;
        assert_eq!(response.status(), 401, "{wrong}");
        assert_eq!(error_of(response).await["code"], "invalid_api_key");
    }
    other.close().await;
    app.shutdown().await;
}

async fn a_gateway_without_a_models_table_maps_openai_names(backend: Backend) {
    let bare = Config::from_toml("", &|_| None).unwrap();
    assert_eq!(bare.models.resolve("gpt-4o"), "glm-4.6v");
    let app = spawn_app_with(backend, |config| config.models = bare.models.clone()).await;
    let key = app.key().await;
    let response = app.chat(&key, hello("gpt-4o")).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["model"], "glm-4.6v");
    app.shutdown().await;
}

async fn the_model_list_shows_what_a_key_may_send(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let ids = model_ids(&app, &key).await;
    for id in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-5",
        "o3-mini",
        "text-embedding-3-small",
        "glm-4.7",
    ] {
        assert!(ids.contains(&id.to_owned()), "{id} in {ids:?}");
    }
    assert_eq!(
        get_models(&app, &key, "/v1/models/gpt-4.1-2025-04-14")
            .await
            .status(),
        200
    );
    let response = get_models(&app, &key, "/v1/models/no-such-model").await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await["code"], "model_not_found");

    let only_mini = app
        .create_key(json!({"name": "m", "team": "t", "models": ["gpt-4o-mini"]}))
        .await;
    let only_mini = only_mini["key"].as_str().unwrap();
    assert_eq!(model_ids(&app, only_mini).await, ["gpt-4o-mini"]);
    let response = get_models(&app, only_mini, "/v1/models/gpt-4o-mini").await;
    assert_eq!(response.status(), 200);
    let model: Value = response.json().await.unwrap();
    assert_eq!(model["id"], "gpt-4o-mini");
    assert_eq!(
        get_models(&app, only_mini, "/v1/models/gpt-4o")
            .await
            .status(),
        404
    );

    let prefixed = app
        .create_key(json!({"name": "p", "team": "t", "models": ["glm-4.7-flash*"]}))
        .await;
    let prefixed = prefixed["key"].as_str().unwrap();
    let ids = model_ids(&app, prefixed).await;
    assert!(ids.contains(&"glm-4.7-flash".to_owned()), "{ids:?}");
    assert!(!ids.contains(&"glm-4.7".to_owned()), "{ids:?}");
    let response = get_models(&app, prefixed, "/v1/models/glm-4.7-flash-preview").await;
    assert_eq!(response.status(), 200, "a prefix admits what it prefixes");
    app.shutdown().await;
}

async fn any_spelling_of_the_bearer_scheme_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    for value in [
        format!("BEARER {key}"),
        format!("bearer {key}"),
        format!("Bearer\t{key}"),
        format!("Bearer  \t {key}"),
    ] {
        let response = app
            .http
            .get(app.url("/v1/models"))
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{value:?}");
    }
    app.shutdown().await;
}

async fn messages_as_the_sdks_echo_them_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let body = json!({"model": "glm-4.7", "messages": [
        {"role": "system", "content": "be brief", "name": "ops"},
        {"role": "user", "content": "weather?", "name": "bob"},
        {"role": "assistant", "content": null, "refusal": null, "annotations": [], "audio": null,
         "function_call": null, "parsed": null, "reasoning_content": "hmm",
         "tool_calls": [{"id": "call_1", "type": "function", "index": 0,
                         "function": {"name": "weather", "arguments": "{}", "parsed_arguments": {}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "40 C", "name": "weather"},
        {"role": "assistant", "content": "It is hot.", "refusal": null, "parsed": {"t": 40}}
    ]});
    let response = app.chat(&key, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    app.shutdown().await;
}

async fn upstream_errors_read_in_english_with_zhipu_words_at_the_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let body =
        json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "#error 1261"}]});
    let response = app.chat(&key, body).await;
    assert_eq!(response.status(), 400);
    let error = error_of(response).await;
    assert_eq!(error["code"], "context_length_exceeded");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("This model's maximum context length was exceeded."),
        "{message}"
    );
    assert!(message.contains("(zhipu code 1261"), "{message}");
    app.shutdown().await;
}

/// What the emulator received first for one request (a repair call may follow it).
async fn echoed(app: &TestApp, key: &str, extra: Value) -> Value {
    let mut body = json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let before = app.emulator.request_count();
    let response = app.chat(key, body).await;
    assert_eq!(response.status(), 200);
    app.emulator.requests()[before].body.clone()
}

async fn structured_output_and_forced_tools_reach_glm_rewritten(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let sent = echoed(
        &app,
        &key,
        json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "count", "strict": true, "schema": schema}}}),
    )
    .await;
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    assert_eq!(sent["messages"][0]["role"], "system");
    let instruction = sent["messages"][0]["content"].as_str().unwrap();
    assert!(instruction.contains(&schema.to_string()), "{instruction}");

    let tools = json!([
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "time"}}
    ]);
    let choice = json!({"type": "function", "function": {"name": "time"}});
    let sent = echoed(&app, &key, json!({"tools": tools, "tool_choice": choice})).await;
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["time"]);
    assert_eq!(sent["tool_choice"], "auto");
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("`time`"));
    app.shutdown().await;
}

async fn an_unknown_model_is_named_in_english(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let body = json!({"model": "made-up-model", "messages": [{"role": "user", "content": "hi"}]});
    let response = app.chat(&key, body).await;
    assert_eq!(response.status(), 404);
    let error = error_of(response).await;
    assert_eq!(error["code"], "model_not_found");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The model `made-up-model` does not exist or you do not have access to it."
        ),
        "{message}"
    );
    assert!(message.contains("(zhipu code 1211"), "{message}");
    app.shutdown().await;
}

on_both_backends!(
    an_unknown_model_is_named_in_english,
    upstream_errors_read_in_english_with_zhipu_words_at_the_end,
    structured_output_and_forced_tools_reach_glm_rewritten,
    a_key_inserted_by_another_process_works_at_once,
    a_gateway_without_a_models_table_maps_openai_names,
    the_model_list_shows_what_a_key_may_send,
    any_spelling_of_the_bearer_scheme_is_accepted,
    messages_as_the_sdks_echo_them_are_accepted,
);
