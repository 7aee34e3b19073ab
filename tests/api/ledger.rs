//! The usage ledger: exactly one row per request with a valid key, with the upstream's own
//! token counts, whatever way the request ends.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{
    request_id, row_of, spawn_app, spawn_app_with, sse_payloads, wait_for_rows, Backend, UsageRow,
};
use crate::on_both_backends;

fn ask(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// The emulator's usage for `text` as a plain answer: what the streamed twin must also record.
async fn plain_usage(app: &crate::helpers::TestApp, key: &str, text: &str) -> Value {
    let body: Value = app
        .chat(key, json!({"model": "glm-4.7", "messages": ask(text)}))
        .await
        .json()
        .await
        .unwrap();
    body["usage"].clone()
}

fn assert_tokens(row: &UsageRow, usage: &Value) {
    assert_eq!(
        row.prompt_tokens,
        usage["prompt_tokens"].as_i64().unwrap(),
        "{row:?}"
    );
    assert_eq!(
        row.completion_tokens,
        usage["completion_tokens"].as_i64().unwrap(),
        "{row:?}"
    );
    assert_eq!(
        row.total_tokens,
        usage["total_tokens"].as_i64().unwrap(),
        "{row:?}"
    );
    assert_eq!(row.usage_source, "upstream");
}

async fn each_kind_of_request_leaves_its_exact_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .create_key(json!({"name": "ledger", "team": "finance"}))
        .await;
    let key = created["key"].as_str().unwrap();
    let key_id = created["id"].as_str().unwrap();

    // Plain chat.
    let response = app
        .chat(
            key,
            json!({"model": "gpt-4", "messages": ask("plain #chunks 3")}),
        )
        .await;
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    let row = row_of(&app.db, &id).await;
    assert_tokens(&row, &body["usage"]);
    assert_eq!(
        (
            row.api_key_id.as_str(),
            row.team.as_str(),
            row.endpoint.as_str()
        ),
        (key_id, "finance", "chat")
    );
    assert_eq!(
        (
            row.requested_model.as_deref(),
            row.upstream_model.as_deref()
        ),
        (Some("gpt-4"), Some("glm-4.7"))
    );
    assert_eq!(
        (row.status_code, row.streamed, row.client_disconnected),
        (200, false, false)
    );
    assert!(row.error_code.is_none() && row.prompt_text.is_none() && row.completion_text.is_none());

    // Streamed, with and without include_usage: the usage of the final chunk either way.
    let expected = plain_usage(&app, key, "stream #chunks 4").await;
    for include_usage in [false, true] {
        let request = json!({"model": "glm-4.7", "messages": ask("stream #chunks 4"), "stream": true,
                             "stream_options": {"include_usage": include_usage}});
        let response = app.chat(key, request).await;
        let id = request_id(&response);
        response.text().await.unwrap();
        let row = row_of(&app.db, &id).await;
        assert_tokens(&row, &expected);
        assert!(row.streamed && row.status_code == 200 && row.error_code.is_none());
    }

    // A tool call, streamed (Zhipu's usage rides on its second tool_calls chunk).
    let tools = json!([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}]);
    let expected: Value = app
        .chat(
            key,
            json!({"model": "glm-4.7", "messages": ask("#tool"), "tools": tools}),
        )
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .chat(
            key,
            json!({"model": "glm-4.7", "messages": ask("#tool"), "tools": tools, "stream": true}),
        )
        .await;
    let id = request_id(&response);
    response.text().await.unwrap();
    assert_tokens(&row_of(&app.db, &id).await, &expected["usage"]);

    // An upstream error: its status and code, no tokens.
    let response = app
        .chat(
            key,
            json!({"model": "glm-4.7", "messages": ask("#error 1113")}),
        )
        .await;
    let id = request_id(&response);
    let row = row_of(&app.db, &id).await;
    assert_eq!(
        (
            row.status_code,
            row.error_code.as_deref(),
            row.usage_source.as_str()
        ),
        (429, Some("insufficient_quota"), "none")
    );
    assert_eq!(row.total_tokens, 0);

    // A stream that breaks mid-answer: estimated from what was streamed, never a silent 0.
    let response = app
        .chat(
            key,
            json!({"model": "glm-4.7", "messages": ask("#cut"), "stream": true}),
        )
        .await;
    let id = request_id(&response);
    let payloads = sse_payloads(&response.text().await.unwrap());
    assert!(payloads.last().unwrap().contains("error"));
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.usage_source, "estimated");
    assert!(
        row.completion_tokens > 0 && row.prompt_tokens > 0,
        "{row:?}"
    );
    assert_eq!(row.total_tokens, row.prompt_tokens + row.completion_tokens);
    assert!(row.error_code.is_some());

    // A mid-stream error event.
    let response = app
        .chat(
            key,
            json!({"model": "glm-4.7", "messages": ask("#midstream-error"), "stream": true}),
        )
        .await;
    let id = request_id(&response);
    response.text().await.unwrap();
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.error_code.as_deref(), Some("upstream_error"));

    // Refused by the gateway itself: a row with the status, for a key that is valid.
    let response = app
        .chat(
            key,
            json!({"model": "glm-4.7", "messages": ask("x"), "n": 3}),
        )
        .await;
    let id = request_id(&response);
    let row = row_of(&app.db, &id).await;
    assert_eq!((row.status_code, row.usage_source.as_str()), (400, "none"));
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .body("{oops")
        .send()
        .await
        .unwrap();
    let row = row_of(&app.db, &request_id(&response)).await;
    assert_eq!(
        (
            row.status_code,
            row.error_code.as_deref(),
            row.requested_model.as_deref()
        ),
        (400, Some("invalid_json"), None)
    );

    // No key, no row: 11 requests above (two plain usage probes included), 11 rows.
    app.http
        .post(app.url("/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    wait_for_rows(&app.db, 11).await;
    app.shutdown().await;
}

async fn a_client_that_leaves_mid_stream_still_gets_the_full_usage(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let expected = plain_usage(&app, &key, "#chunks 8 #slow 100").await;
    let request =
        json!({"model": "glm-4.7", "messages": ask("#chunks 8 #slow 100"), "stream": true});
    let response = app.chat(&key, request).await;
    let id = request_id(&response);
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    let row = row_of(&app.db, &id).await;
    assert!(row.client_disconnected, "{row:?}");
    assert_tokens(&row, &expected);
    app.shutdown().await;
}

async fn five_hundred_concurrent_requests_leave_five_hundred_rows(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let requests = (0..500).map(|i| {
        let stream = i % 2 == 0;
        app.chat(
            &key,
            json!({"model": "glm-4.7", "messages": ask("#chunks 2"), "stream": stream}),
        )
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut ids: Vec<String> = responses.iter().map(request_id).collect();
    for response in responses {
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let rows = wait_for_rows(&app.db, 500).await;
    let mut stored: Vec<String> = rows.into_iter().map(|row| row.request_id).collect();
    ids.sort();
    stored.sort();
    assert_eq!(ids, stored);
    app.shutdown().await;
}

async fn graceful_shutdown_writes_every_pending_row(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.usage.flush_interval = Duration::from_secs(3600);
        config.usage.batch_size = 100_000;
    })
    .await;
    let key = app.key().await;
    for _ in 0..20 {
        app.chat(&key, json!({"model": "glm-4.7", "messages": ask("hi")}))
            .await
            .bytes()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        crate::helpers::usage_rows(&app.db).await.is_empty(),
        "nothing flushed before shutdown"
    );
    let url = app.database_url.clone();
    let _folder = app.shutdown().await;
    let db = glm_gateway::store::Db::connect(&url).await.unwrap();
    assert_eq!(crate::helpers::usage_rows(&db).await.len(), 20);
}

async fn content_is_stored_only_when_asked(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.usage.store_content = true).await;
    let key = app.key().await;
    let response = app
        .chat(
            &key,
            json!({"model": "glm-4.7", "messages": ask("remember me #chunks 2")}),
        )
        .await;
    let row = row_of(&app.db, &request_id(&response)).await;
    assert!(row.prompt_text.unwrap().contains("remember me"));
    assert_eq!(row.completion_text.as_deref(), Some("w1 w2"));
    let request =
        json!({"model": "glm-4.7", "messages": ask("streamed #chunks 3"), "stream": true});
    let response = app.chat(&key, request).await;
    let id = request_id(&response);
    response.text().await.unwrap();
    let row = row_of(&app.db, &id).await;
    assert!(row.prompt_text.unwrap().contains("streamed"));
    assert_eq!(row.completion_text.as_deref(), Some("w1 w2 w3"));
    app.shutdown().await;
}

on_both_backends!(
    each_kind_of_request_leaves_its_exact_row,
    a_client_that_leaves_mid_stream_still_gets_the_full_usage,
    five_hundred_concurrent_requests_leave_five_hundred_rows,
    graceful_shutdown_writes_every_pending_row,
    content_is_stored_only_when_asked,
);

/// A NUL in client text (which Postgres refuses in text columns) must not stop the ledger.
async fn odd_client_text_cannot_hold_up_the_ledger(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.usage.store_content = true).await;
    let key = app.key().await;
    let model = format!("glm-4.7\u{0}{}", "x".repeat(500));
    let response = app
        .chat(
            &key,
            json!({"model": model, "messages": ask("nul \u{0} inside")}),
        )
        .await;
    let first = request_id(&response);
    let response = app
        .chat(&key, json!({"model": "glm-4.7", "messages": ask("after")}))
        .await;
    let second = request_id(&response);
    let row = row_of(&app.db, &first).await;
    let stored = row.requested_model.unwrap();
    assert!(
        !stored.contains('\u{0}')
            && stored.starts_with("glm-4.7x")
            && stored.chars().count() == 200
    );
    row_of(&app.db, &second).await;
    app.shutdown().await;
}

on_both_backends!(odd_client_text_cannot_hold_up_the_ledger);

async fn a_client_that_gives_up_before_the_answer_still_leaves_a_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let request = json!({"model": "glm-4.7", "messages": ask("#slow 1500")});
    let result = impatient
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&request)
        .send()
        .await;
    assert!(result.is_err(), "the client timed out");
    let rows = wait_for_rows(&app.db, 1).await;
    let row = &rows[0];
    assert_eq!(
        (row.status_code, row.error_code.as_deref()),
        (499, Some("client_closed_request"))
    );
    assert!(row.client_disconnected);
    assert_eq!(
        row.usage_source, "estimated",
        "the prompt had gone upstream"
    );
    assert!(row.prompt_tokens > 0 && row.completion_tokens == 0);
    app.shutdown().await;
}

async fn a_stream_cut_by_shutdown_ends_with_an_error_event_and_a_row(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.server.shutdown_grace = Duration::from_millis(500)
    })
    .await;
    let key = app.key().await;
    let request =
        json!({"model": "glm-4.7", "messages": ask("#chunks 40 #slow 100"), "stream": true});
    let response = app.chat(&key, request).await;
    let id = request_id(&response);
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    app.begin_shutdown();
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let payloads = sse_payloads(&text);
    assert!(
        payloads.last().unwrap().contains("gateway_shutting_down"),
        "{text}"
    );
    assert!(!payloads.contains(&"[DONE]".to_owned()));
    let url = app.database_url.clone();
    let _folder = app.shutdown().await;
    let db = glm_gateway::store::Db::connect(&url).await.unwrap();
    let row = crate::helpers::usage_rows(&db)
        .await
        .into_iter()
        .find(|row| row.request_id == id)
        .unwrap();
    assert_eq!(row.error_code.as_deref(), Some("gateway_shutting_down"));
    assert_eq!(row.usage_source, "estimated");
}

on_both_backends!(
    a_client_that_gives_up_before_the_answer_still_leaves_a_row,
    a_stream_cut_by_shutdown_ends_with_an_error_event_and_a_row,
);
