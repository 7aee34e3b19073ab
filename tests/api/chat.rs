//! Chat completions through the gateway: what reaches Zhipu, and what comes back.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{error_of, spawn_app, spawn_app_with, sse_payloads, Backend};
use crate::on_both_backends;

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

async fn plain_chat_is_signed_translated_and_shaped_like_openai(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let response = app
        .chat(
            &key,
            json!({"model": "gpt-4", "messages": user("Hello there")}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "glm-4.7", "the alias was resolved");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Hello there"));
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_i64().unwrap() + usage["completion_tokens"].as_i64().unwrap()
    );

    let sent = app.emulator.requests().pop().unwrap();
    let authorization = sent.authorization.unwrap();
    assert!(
        authorization.starts_with("Bearer ") && authorization.matches('.').count() == 2,
        "a JWT went upstream"
    );
    assert!(
        !authorization.contains(&key),
        "the client's key never goes upstream"
    );
    assert_eq!(sent.body["model"], "glm-4.7");
    app.shutdown().await;
}

async fn openai_parameters_arrive_as_zhipu_accepts_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let request = json!({
        "model": "old-glm",
        "messages": [
            {"role": "developer", "content": "Be brief.", "name": "boss"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]},
        ],
        "temperature": 0, "top_p": 1, "max_completion_tokens": 100000, "stop": "END", "user": "u1",
        "n": 1, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.1, "logit_bias": {"1": 2},
        "parallel_tool_calls": true, "stream_options": {"include_usage": true}, "store": false,
        "metadata": {"a": "b"}, "service_tier": "auto", "thinking": {"type": "disabled"},
    });
    let response = app.chat(&key, request).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = app.emulator.requests().pop().unwrap().body;
    assert_eq!(sent["model"], "glm-4");
    assert_eq!(sent["do_sample"], false);
    assert!(sent.get("temperature").is_none());
    assert_eq!(sent["top_p"], 0.99);
    assert_eq!(sent["max_tokens"], 8192, "clamped to glm-4's limit");
    assert_eq!(sent["stop"], json!(["END"]));
    assert!(sent["user_id"].as_str().unwrap().len() >= 6);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "hi\nthere");
    assert_eq!(
        sent["thinking"],
        json!({"type": "disabled"}),
        "GLM fields pass through"
    );
    assert!(sent["request_id"].is_string());
    for dropped in [
        "n",
        "seed",
        "presence_penalty",
        "stream_options",
        "store",
        "metadata",
        "user",
        "max_completion_tokens",
    ] {
        assert!(
            sent.get(dropped).is_none(),
            "{dropped} must not reach Zhipu"
        );
    }

    let response = app
        .chat(
            &key,
            json!({"model": "glm-4.7", "messages": user("x"), "temperature": 1.5, "top_p": 0.5}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let sent = app.emulator.requests().pop().unwrap().body;
    assert!(sent["temperature"].as_f64().unwrap() <= 1.0);
    app.shutdown().await;
}

async fn what_zhipu_cannot_do_is_refused_before_it_goes_upstream(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    for (extra, param) in [
        (json!({"stop": ["a", "b"]}), "stop"),
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
    ] {
        let mut request = json!({"model": "glm-4.7", "messages": user("x")});
        request
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = app.chat(&key, request).await;
        assert_eq!(response.status(), 400);
        assert_eq!(error_of(response).await["param"], param);
    }
    assert_eq!(app.emulator.request_count(), 0);
    app.shutdown().await;
}

async fn vision_parts_reach_zhipu_as_bare_base64(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let content = json!([
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
    ]);
    let response = app
        .chat(
            &key,
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = app.emulator.requests().pop().unwrap().body;
    assert_eq!(sent["model"], "glm-4.6v");
    assert_eq!(
        sent["messages"][0]["content"][1]["image_url"],
        json!({"url": "AAAA"})
    );
    app.shutdown().await;
}

async fn streams_are_relayed_event_by_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let started = Instant::now();
    let request =
        json!({"model": "glm-4.7", "messages": user("#slow 150 #chunks 8"), "stream": true});
    let response = app.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let total = started.elapsed();
    assert!(
        first_at + Duration::from_millis(700) < total,
        "first event at {first_at:?}, end at {total:?}"
    );

    let payloads = sse_payloads(&text);
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    assert_eq!(payloads.iter().filter(|p| *p == "[DONE]").count(), 1);
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(
            chunk.get("usage").is_none_or(Value::is_null),
            "no usage without include_usage: {chunk}"
        );
    }
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .collect();
    assert!(finishes[..finishes.len() - 1].iter().all(|f| f.is_null()));
    assert_eq!(*finishes.last().unwrap(), "stop");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content.trim(), "w1 w2 w3 w4 w5 w6 w7 w8");
    app.shutdown().await;
}

async fn include_usage_adds_one_final_usage_chunk(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let request = json!({"model": "glm-4.7", "messages": user("#chunks 3"), "stream": true, "stream_options": {"include_usage": true}});
    let text = app.chat(&key, request).await.text().await.unwrap();
    let payloads = sse_payloads(&text);
    let n = payloads.len();
    assert_eq!(payloads[n - 1], "[DONE]");
    let usage_chunk: Value = serde_json::from_str(&payloads[n - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 3);
    for payload in &payloads[..n - 2] {
        let chunk: Value = serde_json::from_str(payload).unwrap();
        assert!(chunk["usage"].is_null(), "{chunk}");
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
    }
    app.shutdown().await;
}

async fn streamed_tool_calls_finish_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}]);
    let request = json!({"model": "glm-4.7", "messages": user("weather? #tool"), "tools": tools, "tool_choice": "required", "stream": true});
    let response = app.chat(&key, request).await;
    assert_eq!(response.status(), 200);
    let payloads = sse_payloads(&response.text().await.unwrap());
    let chunks: Vec<Value> = payloads
        .iter()
        .filter(|p| *p != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let finishes: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap())
        .map(|c| &c["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")]);
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .unwrap();
    assert_eq!(call["index"], 0);
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["city"], "emulated");
    app.shutdown().await;
}

async fn upstream_errors_map_to_openai_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let cases = [
        (
            "#error 1113",
            429,
            "insufficient_quota",
            Some("false"),
            None,
        ),
        ("#error 1302", 429, "rate_limit_exceeded", None, Some(1)),
        ("#error 1211", 404, "model_not_found", None, None),
        ("#error 1261", 400, "context_length_exceeded", None, None),
        ("#error 1301", 400, "content_filter", None, None),
        (
            "#error200 1113",
            429,
            "insufficient_quota",
            Some("false"),
            None,
        ),
        (
            "#http spring",
            502,
            "upstream_not_found",
            Some("false"),
            None,
        ),
        ("#http html", 502, "upstream_error", None, None),
        ("#http empty", 502, "upstream_error", None, None),
    ];
    for (directive, status, code, should_retry, retry_after) in cases {
        for stream in [false, true] {
            let response = app
                .chat(
                    &key,
                    json!({"model": "glm-4.7", "messages": user(directive), "stream": stream}),
                )
                .await;
            assert_eq!(response.status(), status, "{directive} stream={stream}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            let headers = response.headers().clone();
            assert_eq!(
                headers.get("x-should-retry").map(|v| v.to_str().unwrap()),
                should_retry,
                "{directive}"
            );
            let seconds = headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            assert_eq!(seconds, retry_after, "{directive}");
            assert_eq!(error_of(response).await["code"], code, "{directive}");
        }
    }
    app.shutdown().await;
}

async fn failures_mid_stream_become_an_error_event_and_the_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    for directive in ["#midstream-error", "#cut", "#finish network_error"] {
        let response = app
            .chat(
                &key,
                json!({"model": "glm-4.7", "messages": user(directive), "stream": true}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let payloads = sse_payloads(&response.text().await.unwrap());
        let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
        assert!(last["error"]["message"].is_string(), "{directive}: {last}");
        assert!(!payloads.contains(&"[DONE]".to_owned()), "{directive}");
    }
    let response = app
        .chat(
            &key,
            json!({"model": "glm-4.7", "messages": user("#finish sensitive"), "stream": true}),
        )
        .await;
    let payloads = sse_payloads(&response.text().await.unwrap());
    let last_chunk: Value = serde_json::from_str(&payloads[payloads.len() - 2]).unwrap();
    assert_eq!(last_chunk["choices"][0]["finish_reason"], "content_filter");
    app.shutdown().await;
}

async fn a_slow_upstream_times_out_with_504(backend: Backend) {
    // A plain answer's headers come with the whole answer: only the total timeout applies.
    let app = spawn_app_with(backend, |config| {
        config.zhipu.first_byte_timeout = Duration::from_millis(300);
        config.zhipu.total_timeout = Duration::from_millis(1500);
    })
    .await;
    let key = app.key().await;
    let slow = json!({"model": "glm-4.7", "messages": user("#slow 800")});
    assert_eq!(app.chat(&key, slow).await.status(), 200);
    let too_slow = json!({"model": "glm-4.7", "messages": user("#slow 3000")});
    let response = app.chat(&key, too_slow).await;
    assert_eq!(response.status(), 504);
    assert_eq!(
        response.headers()["x-should-retry"],
        "false",
        "a retry would bill the work again"
    );
    assert_eq!(error_of(response).await["code"], "upstream_timeout");
    app.shutdown().await;
}

async fn shutdown_lets_open_streams_finish(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.key().await;
    let request =
        json!({"model": "glm-4.7", "messages": user("#slow 100 #chunks 10"), "stream": true});
    let response = app.chat(&key, request).await;
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    app.begin_shutdown();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    app.shutdown().await;
}

on_both_backends!(
    plain_chat_is_signed_translated_and_shaped_like_openai,
    openai_parameters_arrive_as_zhipu_accepts_them,
    what_zhipu_cannot_do_is_refused_before_it_goes_upstream,
    vision_parts_reach_zhipu_as_bare_base64,
    streams_are_relayed_event_by_event,
    include_usage_adds_one_final_usage_chunk,
    streamed_tool_calls_finish_once,
    upstream_errors_map_to_openai_errors,
    failures_mid_stream_become_an_error_event_and_the_end,
    a_slow_upstream_times_out_with_504,
    shutdown_lets_open_streams_finish,
);
