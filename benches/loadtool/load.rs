//! Streamed requests, for what oha cannot measure: the time to the first and to the last byte
//! of each answer at a fixed rate (open loop: a request is sent when it is due, on a new
//! connection if every open one is busy, whatever the earlier ones are doing), and many
//! streams held open at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// What to send.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub key: Option<String>,
    pub body: Bytes,
}

/// How one request went, in microseconds from the moment it was sent.
enum Outcome {
    Done { first_byte: u64, last_byte: u64 },
    Failed(String),
}

impl Target {
    fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()?)
    }

    /// Sends once and reads the answer to its end; `opened` is called at the first body byte.
    async fn stream(&self, client: &reqwest::Client, opened: impl FnOnce()) -> Outcome {
        let sent = Instant::now();
        let mut request = client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(self.body.clone());
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Outcome::Failed(transport(&error)),
        };
        if response.status() != reqwest::StatusCode::OK {
            return Outcome::Failed(format!("status {}", response.status().as_u16()));
        }
        let mut first_byte = None;
        let mut opened = Some(opened);
        let mut tail = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if first_byte.is_none() {
                        first_byte = Some(micros(sent.elapsed()));
                        if let Some(opened) = opened.take() {
                            opened();
                        }
                    }
                    tail.extend_from_slice(&chunk);
                    let keep = tail.len().saturating_sub(32);
                    tail.drain(..keep);
                }
                Ok(None) => break,
                Err(error) => return Outcome::Failed(transport(&error)),
            }
        }
        let last_byte = micros(sent.elapsed());
        match first_byte {
            Some(first_byte) if tail.ends_with(b"data: [DONE]\n\n") => Outcome::Done {
                first_byte,
                last_byte,
            },
            _ => Outcome::Failed("stream without [DONE]".into()),
        }
    }
}

fn transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Outcomes as they come in.
struct Tally {
    first_byte: Option<Histogram<u64>>,
    last_byte: Option<Histogram<u64>>,
    errors: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            first_byte: Some(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            last_byte: Some(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            errors: Default::default(),
        })
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Done {
                first_byte,
                last_byte,
            } => {
                for (histogram, value) in [
                    (&mut self.first_byte, first_byte),
                    (&mut self.last_byte, last_byte),
                ] {
                    if let Some(histogram) = histogram {
                        histogram.saturating_record(value.max(1));
                    }
                }
            }
            Outcome::Failed(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn report(&self) -> Value {
        let errors: u64 = self.errors.values().sum();
        let ok = self.last_byte.as_ref().map_or(0, Histogram::len);
        json!({
            "requests": ok + errors,
            "errors": errors,
            "error_kinds": self.errors,
            "first_byte_ms": summary(self.first_byte.as_ref()),
            "last_byte_ms": summary(self.last_byte.as_ref()),
        })
    }
}

fn summary(histogram: Option<&Histogram<u64>>) -> Value {
    let Some(h) = histogram.filter(|h| !h.is_empty()) else {
        return Value::Null;
    };
    let ms = |micros: u64| micros as f64 / 1000.0;
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
        "mean": h.mean() / 1000.0,
    })
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `rate` requests a second for `duration`, each sent when due. Latencies count from the
/// moment a request is sent; how late the sender was against the schedule is reported apart
/// (`send_lag_ms`), so a sender that could not keep up shows.
pub async fn fixed_rate(target: Target, rate: u32, duration: Duration) -> anyhow::Result<Value> {
    let client = Target::client(Duration::from_secs(30))?;
    let tally = Arc::new(Mutex::new(Tally::new()?));
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let interval = Duration::from_secs(1) / rate.max(1);
    let count = (duration.as_secs_f64() * f64::from(rate)).round() as u32;
    let tasks = TaskTracker::new();
    let started = Instant::now();
    for i in 0..count {
        let due = started + interval * i;
        tokio::time::sleep_until(due).await;
        lag.saturating_record(micros(Instant::now() - due).max(1));
        let (client, target, tally) = (client.clone(), target.clone(), Arc::clone(&tally));
        tasks.spawn(async move {
            let outcome = target.stream(&client, || {}).await;
            lock(&tally).add(outcome);
        });
    }
    let sending = started.elapsed();
    tasks.close();
    tasks.wait().await;
    let mut report = lock(&tally).report();
    report["rate"] = json!(rate);
    report["sending_s"] = json!(sending.as_secs_f64());
    report["send_lag_ms"] = json!({
        "p50": lag.value_at_quantile(0.5) as f64 / 1000.0,
        "p99": lag.value_at_quantile(0.99) as f64 / 1000.0,
        "max": lag.max() as f64 / 1000.0,
    });
    Ok(report)
}

/// Opens `streams` streams at `rate` a second, each on its own connection, and keeps reading
/// them; once every one has its first byte (or failed), writes `{"open", "failed"}` to
/// `ready_file`, so the caller can look at the server while they are all open. Returns when
/// they have all ended.
pub async fn hold(
    target: Target,
    streams: u32,
    rate: u32,
    ready_file: std::path::PathBuf,
) -> anyhow::Result<Value> {
    let tally = Arc::new(Mutex::new(Tally::new()?));
    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs(1) / rate.max(1);
    let tasks = TaskTracker::new();
    let started = Instant::now();
    for i in 0..streams {
        tokio::time::sleep_until(started + interval * i).await;
        // One client each: a connection of its own per stream, as separate clients would have.
        let client = Target::client(Duration::from_secs(120))?;
        let (target, tally) = (target.clone(), Arc::clone(&tally));
        let (open, failed) = (Arc::clone(&open), Arc::clone(&failed));
        tasks.spawn(async move {
            let outcome = target
                .stream(&client, || {
                    open.fetch_add(1, Ordering::AcqRel);
                })
                .await;
            if matches!(outcome, Outcome::Failed(_)) {
                failed.fetch_add(1, Ordering::AcqRel);
            }
            lock(&tally).add(outcome);
        });
    }
    let total = usize::try_from(streams)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    // A stream that failed after its first byte counts in both; the wait is for each stream to
    // have come to one or the other.
    while open.load(Ordering::Acquire) + failed.load(Ordering::Acquire) < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = json!({
        "open": open.load(Ordering::Acquire),
        "failed": failed.load(Ordering::Acquire),
        "opening_s": started.elapsed().as_secs_f64(),
    });
    tokio::fs::write(&ready_file, ready.to_string()).await?;
    tasks.close();
    tasks.wait().await;
    let mut report = lock(&tally).report();
    report["ready"] = ready;
    Ok(report)
}
