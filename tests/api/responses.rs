//! OpenAI's Responses API through the gateway to Zhipu's: translation, streams, stored
//! responses, isolation between teams, errors and ledger rows.

use glm_gateway::config::Secret;
use serde_json::{json, Value};

use crate::helpers::{
    error_of, request_id, row_of, spawn_app, spawn_app_with, wait_for_rows, Backend, TestApp,
};
use crate::on_both_backends;

mod disconnect;
mod isolation;
mod promises;

async fn create(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/responses"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn call(app: &TestApp, key: &str, method: reqwest::Method, path: &str) -> reqwest::Response {
    app.http
        .request(method, app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// `(event, data)` of each frame, checking OpenAI's framing on the way (no `[DONE]`).
fn frames(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with("\n\n"), "{text:?}");
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("event and data lines");
            let event = event
                .strip_prefix("event: ")
                .expect("an event line")
                .to_owned();
            let data: Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("a data line")).unwrap();
            assert_eq!(data["type"], event.as_str());
            (event, data)
        })
        .collect()
}

fn output_text(response: &Value) -> String {
    response["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn upstream_calls(app: &TestApp) -> usize {
    app.emulator
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/responses"))
        .count()
}

async fn plain_and_streamed_responses_are_translated_and_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "Hello there"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let plain_id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (&body["object"], &body["status"]),
        (&json!("response"), &json!("completed"))
    );
    assert_eq!(body["model"], "glm-4.6v");
    assert_eq!(body["store"], true, "OpenAI's default, sent explicitly");
    for field in [
        "completed_at",
        "reasoning",
        "truncation",
        "tools",
        "text",
        "metadata",
    ] {
        assert!(!body[field].is_null(), "{field} is filled: {body}");
    }
    assert!(output_text(&body).contains("Hello there"));
    let sent = app.emulator.requests().pop().unwrap();
    assert_eq!(sent.path, "/api/v1/responses");
    assert_eq!(
        (&sent.body["model"], &sent.body["store"]),
        (&json!("glm-4.6v"), &json!(true))
    );
    assert!(sent.authorization.unwrap().starts_with("Bearer "));

    let stream = json!({"model": "gpt-4o", "input": "#chunks 4", "stream": true});
    let response = create(&app, &key, stream).await;
    assert_eq!(response.status(), 200);
    let stream_id = request_id(&response);
    let events = frames(&response.text().await.unwrap());
    let deltas: String = events
        .iter()
        .filter(|(event, _)| event == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap())
        .collect();
    let (last, terminal) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(deltas, "w1 w2 w3 w4");
    assert_eq!(output_text(&terminal["response"]), deltas);
    let usage = terminal["response"]["usage"].clone();
    assert_eq!(events[0].1["response"]["store"], true);

    let rows = wait_for_rows(&app.db, 2).await;
    let plain = rows.iter().find(|r| r.request_id == plain_id).unwrap();
    assert_eq!(plain.endpoint, "responses");
    assert_eq!(plain.requested_model.as_deref(), Some("gpt-4o"));
    assert_eq!(plain.upstream_model.as_deref(), Some("glm-4.6v"));
    assert_eq!(
        plain.prompt_tokens,
        body["usage"]["input_tokens"].as_i64().unwrap()
    );
    assert_eq!(
        plain.completion_tokens,
        body["usage"]["output_tokens"].as_i64().unwrap()
    );
    assert_eq!((plain.status_code, plain.streamed), (200, false));
    assert_eq!(plain.usage_source, "upstream");
    let streamed = rows.iter().find(|r| r.request_id == stream_id).unwrap();
    assert_eq!((streamed.streamed, streamed.status_code), (true, 200));
    assert_eq!(
        streamed.prompt_tokens,
        usage["input_tokens"].as_i64().unwrap()
    );
    assert_eq!(streamed.completion_tokens, 4);
    assert_eq!(
        streamed.total_tokens,
        usage["total_tokens"].as_i64().unwrap()
    );
    assert_eq!(
        (
            streamed.error_code.as_deref(),
            streamed.usage_source.as_str()
        ),
        (None, "upstream")
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_responses_chain_list_and_delete() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.key().await;
    let input = json!([
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "first turn"},
            {"type": "input_image", "image_url": {"url": "https://example.com/cat.png"}}]}
    ]);
    let first: Value = create(&app, &key, json!({"model": "gpt-4o", "input": input}))
        .await
        .json()
        .await
        .unwrap();
    let id = first["id"].as_str().unwrap();
    let sent = app.emulator.requests().pop().unwrap().body;
    assert_eq!(
        sent["input"][1]["content"][1]["image_url"],
        "https://example.com/cat.png"
    );

    let next = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "second #echo", "previous_response_id": id}),
    )
    .await;
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    assert_eq!(next["previous_response_id"], first["id"]);

    let got: Value = call(
        &app,
        &key,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!((&got["id"], &got["store"]), (&first["id"], &json!(true)));
    let items: Value = call(
        &app,
        &key,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}/input_items?order=asc&limit=1&junk=1"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"].as_array().unwrap().len(), 1);
    assert_eq!(items["data"][0]["role"], "developer");
    assert_eq!(items["has_more"], true);
    let listed = app.emulator.requests().pop().unwrap().path;
    assert_eq!(listed, format!("/api/v1/responses/{id}/input_items"));

    let response = call(
        &app,
        &key,
        reqwest::Method::POST,
        &format!("/v1/responses/{id}/cancel"),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["code"], "cancel_not_supported");

    let deleted: Value = call(
        &app,
        &key,
        reqwest::Method::DELETE,
        &format!("/v1/responses/{id}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(deleted["deleted"], true);
    let before = upstream_calls(&app);
    let response = call(
        &app,
        &key,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}"),
    )
    .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        upstream_calls(&app),
        before,
        "the owner row went with the response"
    );

    let unstored: Value = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "x", "store": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(unstored["store"], false);
    let path = format!("/v1/responses/{}", unstored["id"].as_str().unwrap());
    assert_eq!(
        call(&app, &key, reqwest::Method::GET, &path).await.status(),
        404
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_call_round_trip_completes() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.key().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let first: Value = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "use get_weather for Paris", "tools": tools}),
    )
    .await
    .json()
    .await
    .unwrap();
    let item = &first["output"][0];
    assert_eq!(
        (&item["type"], &item["name"]),
        (&json!("function_call"), &json!("get_weather"))
    );
    let call_id = item["call_id"].as_str().unwrap();
    let second = json!({"model": "gpt-4o", "tools": tools, "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call_id, "output": "{\"temp\": 21}"}]});
    let second: Value = create(&app, &key, second).await.json().await.unwrap();
    assert!(output_text(&second).contains("21"), "{second}");

    let forced = json!({"model": "gpt-4o", "input": "hi", "tools": tools,
        "tool_choice": {"type": "function", "name": "get_weather"}});
    let response = create(&app, &key, forced).await;
    assert_eq!(response.headers()["x-glm-gateway-emulated"], "tool_choice");
    let sent = app.emulator.requests().pop().unwrap().body;
    assert_eq!(sent["tool_choice"], "auto");
    assert!(sent["instructions"]
        .as_str()
        .unwrap()
        .contains("get_weather"));
    app.shutdown().await;
}

async fn errors_are_openai_shaped_and_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = create(
        &app,
        &key,
        json!({"model": "glm-nonexistent", "input": "x"}),
    )
    .await;
    assert_eq!(response.status(), 404);
    let unknown_model = request_id(&response);
    assert_eq!(error_of(response).await["code"], "model_not_found");

    let before = upstream_calls(&app);
    let tools = json!([{"type": "code_interpreter", "container": {"type": "auto"}}]);
    let response = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "x", "tools": tools}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let refused = request_id(&response);
    let error = error_of(response).await;
    assert_eq!(error["param"], "tools");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("code_interpreter"));
    assert_eq!(upstream_calls(&app), before);

    let response = create(
        &app,
        &key,
        json!({"model": "gpt-4o", "input": "x #error overloaded"}),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(error_of(response).await["code"], "upstream_overloaded");

    let failing =
        json!({"model": "gpt-4o", "input": "#chunks 5 #midstream-fail #no-done", "stream": true});
    let response = create(&app, &key, failing).await;
    let failed = request_id(&response);
    let events = frames(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().0, "response.failed");
    assert_eq!(events.last().unwrap().1["response"]["status"], "failed");

    let row = row_of(&app.db, &unknown_model).await;
    assert_eq!(
        (row.status_code, row.error_code.as_deref()),
        (404, Some("model_not_found"))
    );
    let row = row_of(&app.db, &refused).await;
    assert_eq!((row.status_code, row.usage_source.as_str()), (400, "none"));
    let row = row_of(&app.db, &failed).await;
    assert_eq!((row.status_code, row.streamed), (200, true));
    assert_eq!(row.error_code.as_deref(), Some("server_error"));
    assert_eq!(
        row.usage_source, "estimated",
        "no usage came; two deltas did"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zhipus_http_200_auth_failure_is_a_502() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.zhipu.api_keys = vec![Secret::new("wrong-id.wrong-secret")];
    })
    .await;
    let key = app.key().await;
    for stream in [false, true] {
        let body = json!({"model": "gpt-4o", "input": "x", "stream": stream});
        let response = create(&app, &key, body).await;
        assert_eq!(response.status(), 502, "stream: {stream}");
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert_eq!(error_of(response).await["code"], "upstream_auth_failed");
    }
    let response = app.emulator.requests().pop().unwrap();
    assert_eq!(response.path, "/api/v1/responses");
    app.shutdown().await;
}

on_both_backends!(
    plain_and_streamed_responses_are_translated_and_recorded,
    errors_are_openai_shaped_and_recorded,
);
