//! The work the gateway does on every request, each step alone: translating an OpenAI chat body
//! into Zhipu's, rewriting a stream's chunks, checking a downstream key, and encoding the
//! ledger row for the journal. (Appending rows to the journal file is timed by `ledger_writer`;
//! the whole request path against nginx by `bench/run.sh`.)
//!
//! `cargo bench --bench hot_paths` (add `-- --quick` for a short run, or a name to filter).

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use glm_gateway::keys::{self, bearer_token, ApiKey, KeyCache};
use glm_gateway::openai::{to_glm, ChatCompletionRequest, ChunkRewriter};
use glm_gateway::relay::StreamTranslator;
use glm_gateway::sse::SseParser;
use glm_gateway::store::KeyRecord;
use glm_gateway::usage::{journal_line, Tap};

mod common;

const SMALL_CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello"}],"temperature":0.5,"max_tokens":256}"#;

/// A conversation with tools, a tool result and GLM-only fields, as an agent sends it.
const TOOL_CHAT: &str = r#"{"model":"gpt-4.1","messages":[
 {"role":"system","content":"You are a helpful assistant that answers with the weather."},
 {"role":"user","content":[{"type":"text","text":"What is the weather in Paris and in Berlin today?"}]},
 {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}],"refusal":null},
 {"role":"tool","tool_call_id":"call_1","content":"{\"temperature\":21,\"sky\":\"clear\"}"},
 {"role":"assistant","content":"Paris is clear at 21 °C. Checking Berlin next."},
 {"role":"user","content":"And Berlin?"}],
 "tools":[{"type":"function","function":{"name":"get_weather","description":"The weather in a city today","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}}},
          {"type":"function","function":{"name":"get_time","description":"The local time in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
 "tool_choice":"auto","temperature":0.2,"top_p":0.9,"max_completion_tokens":1024,"stop":["\n\n"],
 "user":"user-1234","stream":true,"stream_options":{"include_usage":true},"thinking":{"type":"disabled"}}"#;

/// A real Zhipu stream (reasoning, text, the finish with usage, `[DONE]`) and one with a call.
const TEXT_STREAM: &[u8] = include_bytes!("../src/openai/fixtures/simple.sse");
const TOOL_STREAM: &[u8] = include_bytes!("../src/openai/fixtures/tool_calls.sse");

fn parse(body: &str) -> ChatCompletionRequest {
    serde_json::from_str(body).unwrap_or_else(|error| unreachable!("a fixed body: {error}"))
}

fn translation(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate");
    for (name, body) in [("small", SMALL_CHAT), ("tools", TOOL_CHAT)] {
        group.bench_function(format!("to_glm/{name}"), |b| {
            b.iter_batched(
                || parse(body),
                |request| to_glm(request, "glm-4.7", "0190e1c2-7c7c-7a3a-9f3e-2f5c1b6a9d10"),
                BatchSize::SmallInput,
            )
        });
        // What the handler does with the bytes it gets: parse, translate, serialize.
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("bytes_to_bytes/{name}"), |b| {
            b.iter(|| {
                let request: ChatCompletionRequest =
                    serde_json::from_slice(black_box(body.as_bytes())).ok()?;
                let glm =
                    to_glm(request, "glm-4.7", "0190e1c2-7c7c-7a3a-9f3e-2f5c1b6a9d10").ok()?;
                serde_json::to_vec(&glm.body).ok()
            })
        });
    }
    group.finish();
}

/// The `data` of each event of a stream.
fn events(stream: &[u8]) -> Vec<String> {
    let mut parser = SseParser::new(4 << 20);
    let mut events = VecDeque::new();
    if parser.feed(stream, &mut events).is_err() {
        unreachable!("a fixed stream within the cap");
    }
    events.into_iter().map(|event| event.data).collect()
}

fn streams(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    for (name, stream) in [("text", TEXT_STREAM), ("tool_call", TOOL_STREAM)] {
        let data = events(stream);
        group.throughput(Throughput::Elements(data.len() as u64));
        // ChunkRewriter alone, one whole stream's events.
        group.bench_function(format!("rewrite/{name}"), |b| {
            b.iter(|| {
                let mut rewriter = ChunkRewriter::new(true);
                let mut frames = 0;
                for event in &data {
                    frames += rewriter.push(black_box(event)).len();
                }
                frames
            })
        });
        // What the relay does per stream: cut events from the bytes, show each to the ledger's
        // tap and rewrite it.
        group.bench_function(format!("relay/{name}"), |b| {
            b.iter(|| {
                let mut parser = SseParser::new(4 << 20);
                let mut events = VecDeque::new();
                let mut rewriter = ChunkRewriter::new(true);
                let mut tap = Tap::new(false);
                let mut frames = 0;
                if parser.feed(black_box(stream), &mut events).is_err() {
                    return 0;
                }
                for event in events {
                    frames += StreamTranslator::push(&mut rewriter, &event.data, &mut tap).len();
                }
                frames + StreamTranslator::finish(&mut rewriter, None).len()
            })
        });
    }
    group.finish();
}

fn key_checks(c: &mut Criterion) {
    let generated = keys::generate();
    let record = KeyRecord {
        rpm: Some(1 << 40),
        tpm: Some(1 << 50),
        ..KeyRecord::unlimited(
            &generated.id,
            "bench",
            "bench",
            generated.secret_hash.clone(),
        )
    };
    let Some(key) = ApiKey::from_record(&record) else {
        unreachable!("a row just made");
    };
    let Some((_, secret)) = keys::parse(&generated.full) else {
        unreachable!("a key just made");
    };
    let secret = secret.to_owned();
    let mut headers = axum::http::HeaderMap::new();
    let Ok(authorization) = format!("Bearer {}", generated.full).parse() else {
        unreachable!("a key is a valid header value");
    };
    headers.insert(axum::http::header::AUTHORIZATION, authorization);

    let mut group = c.benchmark_group("keys");
    group.bench_function("hash_secret", |b| {
        b.iter(|| keys::hash_secret(black_box(&secret)))
    });
    group.bench_function("secret_matches", |b| {
        b.iter(|| key.secret_matches(black_box(&secret)))
    });
    group.bench_function("bearer_token", |b| {
        b.iter(|| bearer_token(black_box(&headers)).map(str::len))
    });
    // The request path's check of a key already in memory: parse, find, verify.
    let cache = KeyCache::default();
    cache.insert(key.clone());
    for _ in 0..999 {
        let other = keys::generate();
        let row = KeyRecord {
            id: other.id,
            secret_hash: other.secret_hash,
            ..record.clone()
        };
        if let Some(other) = ApiKey::from_record(&row) {
            cache.insert(other);
        }
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        unreachable!("a runtime without I/O");
    };
    group.bench_function("authenticate_cached/1000_keys", |b| {
        b.to_async(&runtime)
            .iter(|| async { cache.authenticate(black_box(&generated.full)).await.is_ok() })
    });
    group.finish();
}

fn ledger_row(c: &mut Criterion) {
    let event = common::usage_event(1);
    c.bench_function("ledger/journal_line", |b| {
        b.iter(|| journal_line(black_box(&event)))
    });
}

criterion_group!(benches, translation, streams, key_checks, ledger_row);
criterion_main!(benches);
