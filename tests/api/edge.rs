//! The gateway on the open network: connections that send half a header, half a body or
//! nothing, or idle; too many connections or requests at once; and upstream streams that stall,
//! send a huge line or a byte that is not UTF-8.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    error_of, request_id, row_of, spawn_app_with, sse_payloads, Backend, TestApp,
};
use crate::on_both_backends;

mod errors;

pub(crate) async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; fails if that takes longer than `limit`.
pub(crate) async fn closed_within(stream: &mut TcpStream, limit: Duration) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection is still open after {limit:?}");
    String::from_utf8_lossy(&received).into_owned()
}

fn chat_body(text: &str, stream: bool) -> Value {
    json!({"model": "glm-4.7", "messages": [{"role": "user", "content": text}], "stream": stream})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_silent_connections_are_closed_in_time() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.header_timeout = Duration::from_millis(300);
    })
    .await;
    let mut half_header = connect(&app).await;
    half_header
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = connect(&app).await;
    // A normal request is served meanwhile.
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    closed_within(&mut half_header, Duration::from_secs(5)).await;
    closed_within(&mut silent, Duration::from_secs(5)).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.header_timeout = Duration::from_secs(30);
        config.server.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "kept alive a while"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_connections_without_a_request() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.header_timeout = Duration::from_secs(60);
    })
    .await;
    let mut silent = connect(&app).await;
    let mut half_header = connect(&app).await;
    half_header
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    app.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    closed_within(&mut silent, Duration::from_secs(1)).await;
    closed_within(&mut half_header, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_is_served() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let key = app.key().await;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = http2
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body("#chunks 3", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let payloads = sse_payloads(&response.text().await.unwrap());
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_the_next_waits_for_a_free_slot() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.max_connections = 1;
    })
    .await;
    let holder = connect(&app).await;
    let waiting = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(waiting.is_err(), "a second connection was served");
    drop(holder);
    let served = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_body_gets_408() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.body_timeout = Duration::from_millis(300);
    })
    .await;
    let key = app.key().await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_requests_get_503_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.max_in_flight = 1;
    })
    .await;
    let key = app.key().await;
    let slow = app.chat(&key, chat_body("#slow 1500 hi", false));
    let refused = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        app.chat(&key, chat_body("hi", false)).await
    };
    let (slow, refused) = tokio::join!(slow, refused);
    assert_eq!(slow.status(), 200);
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        error_of(refused).await["code"],
        "too_many_requests_in_flight"
    );
    assert_eq!(app.chat(&key, chat_body("hi", false)).await.status(), 200);
    app.shutdown().await;
}

async fn a_silent_upstream_ends_the_stream_with_a_504_event(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.zhipu.stream_idle_timeout = Duration::from_millis(500);
    })
    .await;
    let key = app.key().await;
    let started = Instant::now();
    let response = app.chat(&key, chat_body("#stall #chunks 5", true)).await;
    let id = request_id(&response);
    let payloads = sse_payloads(&response.text().await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(10));
    let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["code"], "upstream_idle_timeout",
        "{payloads:?}"
    );
    assert_eq!(
        payloads.len(),
        3,
        "two chunks, then the error: {payloads:?}"
    );
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.error_code.as_deref(), Some("upstream_idle_timeout"));
    app.shutdown().await;
}

async fn a_huge_sse_line_ends_the_stream_with_a_502_event(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.server.max_sse_event_bytes = 1 << 20;
    })
    .await;
    let key = app.key().await;
    // Under the cap, a long chunk passes.
    let response = app
        .chat(&key, chat_body("#long-line 200000 #chunks 4", true))
        .await;
    let payloads = sse_payloads(&response.text().await.unwrap());
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    assert!(payloads.iter().any(|p| p.len() > 200_000));
    // Over it, the stream ends with the error, and the row says so.
    let response = app
        .chat(&key, chat_body("#long-line 16000000 #chunks 4", true))
        .await;
    let id = request_id(&response);
    let payloads = sse_payloads(&response.text().await.unwrap());
    let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_event_too_large");
    let row = row_of(&app.db, &id).await;
    assert_eq!(row.error_code.as_deref(), Some("upstream_event_too_large"));
    app.shutdown().await;
}

async fn a_byte_that_is_not_utf8_spoils_only_its_event(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let key = app.key().await;
    let response = app.chat(&key, chat_body("#bad-utf8 #chunks 4", true)).await;
    let payloads = sse_payloads(&response.text().await.unwrap());
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let text: String = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert!(text.contains("bad-\u{fffd}-byte"), "{text}");
    assert!(text.contains("w3") && text.contains("w4"), "{text}");
    app.shutdown().await;
}

on_both_backends!(
    a_silent_upstream_ends_the_stream_with_a_504_event,
    a_huge_sse_line_ends_the_stream_with_a_502_event,
    a_byte_that_is_not_utf8_spoils_only_its_event,
);
