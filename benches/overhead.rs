//! What the gateway adds to a request: the same chat request sent straight to the GLM emulator
//! and through the gateway (auth, translation, upstream signing), with the usage ledger off and
//! on, and with a key whose rpm, tpm and token budget are checked on every request, over one
//! keep-alive connection; then the throughput of many connections at once.
//!
//! `cargo bench --bench overhead` (SQLite), or with `BENCH_POSTGRES=postgres://user@host:port`
//! (a fresh database is made there).
//! `BENCH_REQUESTS` (default 5000) and `BENCH_CONCURRENCY` (default 64) tune it;
//! `BENCH_LIMITS_REDIS=redis://127.0.0.1:6379` keeps the limit counters in Redis.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark's tasks end with the benchmark"
)]

use std::time::{Duration, Instant};

use glm_gateway::app::{App, BuildOptions};
use glm_gateway::config::Config;
use glm_gateway::emulator::{self, EmulatorConfig};
use glm_gateway::keys::admin::{create_key, CreateKey};
use serde_json::json;

const UPSTREAM_KEY: &str = "bench.bench-secret-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests = env_number("BENCH_REQUESTS", 5000);
    let concurrency = env_number("BENCH_CONCURRENCY", 64);
    let folder = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream = format!("http://{}/api/paas/v4", listener.local_addr()?);
    emulator::spawn(
        listener,
        EmulatorConfig {
            api_keys: vec![UPSTREAM_KEY.into()],
            chunk_delay: Duration::ZERO,
        },
    );

    let database_url = match std::env::var("BENCH_POSTGRES") {
        Ok(server) => fresh_postgres_database(&server).await?,
        Err(_) => format!("sqlite://{}", folder.path().join("bench.db").display()),
    };
    let with_ledger = start_gateway(
        &upstream,
        &database_url,
        folder.path().join("journal"),
        true,
        false,
    )
    .await?;
    let without_ledger = start_gateway(
        &upstream,
        &database_url,
        folder.path().join("journal-off"),
        false,
        false,
    )
    .await?;
    let with_limits = start_gateway(
        &upstream,
        &database_url,
        folder.path().join("journal-limits"),
        true,
        true,
    )
    .await?;

    let body = json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "Say hello"}], "temperature": 0.5});
    let direct = Target {
        url: format!("{upstream}/chat/completions"),
        key: UPSTREAM_KEY.into(),
        body: body.clone(),
    };
    let ledger_on = Target {
        url: with_ledger.0,
        key: with_ledger.1,
        body: body.clone(),
    };
    let ledger_off = Target {
        url: without_ledger.0,
        key: without_ledger.1,
        body: body.clone(),
    };
    let limits_on = Target {
        url: with_limits.0,
        key: with_limits.1,
        body,
    };

    println!("database: {database_url}");
    println!("one connection, {requests} sequential requests each (after 500 warm-up):");
    let direct_latencies = direct.sequential(requests).await?;
    let off_latencies = ledger_off.sequential(requests).await?;
    let on_latencies = ledger_on.sequential(requests).await?;
    let limited_latencies = limits_on.sequential(requests).await?;
    report("  straight to the emulator        ", &direct_latencies);
    report("  through the gateway, ledger off ", &off_latencies);
    report("  through the gateway, ledger on  ", &on_latencies);
    report("  ledger on, key with rpm/tpm/budget", &limited_latencies);
    for (label, latencies) in [
        ("ledger off", &off_latencies),
        ("ledger on ", &on_latencies),
        ("ledger on, limits on", &limited_latencies),
    ] {
        let p50 = percentile(latencies, 0.50).saturating_sub(percentile(&direct_latencies, 0.50));
        let p99 = percentile(latencies, 0.99).saturating_sub(percentile(&direct_latencies, 0.99));
        println!(
            "  added by the gateway, {label}: p50 {:.3} ms, p99 {:.3} ms",
            ms(p50),
            ms(p99)
        );
    }

    println!("{concurrency} connections, {} requests:", requests * 4);
    let (rate, failures) = ledger_on.concurrent(requests * 4, concurrency).await?;
    println!("  through the gateway, ledger on: {rate:.0} req/s ({failures} failed)");
    Ok(())
}

/// A new database on the PostgreSQL server at `server` (a URL without a database name).
async fn fresh_postgres_database(server: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let server = server.trim_end_matches('/');
    let name = format!("glm_test_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    Ok(format!("{server}/{name}"))
}

/// A gateway on its own port; returns its chat URL and a key for it.
async fn start_gateway(
    upstream: &str,
    database_url: &str,
    journal_dir: std::path::PathBuf,
    ledger: bool,
    limited: bool,
) -> anyhow::Result<(String, String)> {
    let env = |name: &str| match name {
        "GLM_GATEWAY_LISTEN" => Some("127.0.0.1:0".to_owned()),
        "ZHIPUAI_API_KEY" => Some(UPSTREAM_KEY.to_owned()),
        "ZHIPUAI_BASE_URL" => Some(upstream.to_owned()),
        "DATABASE_URL" => Some(database_url.to_owned()),
        _ => None,
    };
    let mut config = Config::from_toml("", &env)?;
    config.usage.journal_dir = journal_dir;
    config.usage.enabled = ledger;
    if let Ok(url) = std::env::var("BENCH_LIMITS_REDIS") {
        config.limits.store = glm_gateway::config::LimitStore::Redis;
        config.limits.redis_url = Some(url);
    }
    let app = App::build(config, BuildOptions::default()).await?;
    let url = format!("http://{}/v1/chat/completions", app.local_addr());
    let request = CreateKey {
        name: "bench".into(),
        team: "bench".into(),
        // Limits that never refuse: the cost of checking them on every request.
        rpm: limited.then_some(1 << 40),
        tpm: limited.then_some(1 << 50),
        token_budget: limited.then_some(1 << 50),
        ..Default::default()
    };
    let (created, key) = create_key(&app.state().db, request)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    app.state().keys.insert(key);
    tokio::spawn(app.run_until(std::future::pending()));
    Ok((url, created.key))
}

struct Target {
    url: String,
    key: String,
    body: serde_json::Value,
}

impl Target {
    async fn send(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let response = client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&self.body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "status {}",
            response.status()
        );
        response.bytes().await?;
        Ok(())
    }

    async fn sequential(&self, count: usize) -> anyhow::Result<Vec<Duration>> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        for _ in 0..500 {
            self.send(&client).await?;
        }
        let mut latencies = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            self.send(&client).await?;
            latencies.push(started.elapsed());
        }
        latencies.sort();
        Ok(latencies)
    }

    async fn concurrent(&self, count: usize, concurrency: usize) -> anyhow::Result<(f64, usize)> {
        let client = reqwest::Client::new();
        let per_task = count / concurrency.max(1);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let client = client.clone();
            let target = Target {
                url: self.url.clone(),
                key: self.key.clone(),
                body: self.body.clone(),
            };
            tasks.push(tokio::spawn(async move {
                let mut failures = 0;
                for _ in 0..per_task {
                    failures += usize::from(target.send(&client).await.is_err());
                }
                failures
            }));
        }
        let mut failures = 0;
        for task in tasks {
            failures += task.await?;
        }
        Ok((
            (per_task * concurrency) as f64 / started.elapsed().as_secs_f64(),
            failures,
        ))
    }
}

fn report(label: &str, latencies: &[Duration]) {
    println!(
        "{label} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms",
        ms(percentile(latencies, 0.50)),
        ms(percentile(latencies, 0.90)),
        ms(percentile(latencies, 0.99))
    );
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
