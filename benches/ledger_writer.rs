//! How many usage rows per second the ledger writer moves from the journal into the database:
//! N rows are appended to a fresh journal, then the writer runs until the backlog is empty.
//!
//! `cargo bench --bench ledger_writer` (PostgreSQL at `BENCH_POSTGRES`, default the local
//! server; a fresh database is made), `BENCH_ROWS` (default 200000), `BENCH_BATCH` (500).

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark's tasks end with the benchmark"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use glm_gateway::store::Db;
use glm_gateway::usage::{run_writer, Journal, WriterSettings};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows = env_number("BENCH_ROWS", 200_000);
    let batch = env_number("BENCH_BATCH", 500);
    let server = std::env::var("BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("glm_test_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let db = Db::connect(&format!("{server}/{name}")).await?;
    db.migrate().await?;
    let today = Utc::now().date_naive();
    db.prepare_partitions(today, today).await?;

    let folder = tempfile::tempdir()?;
    let journal = Arc::new(Journal::open(folder.path())?);
    let appended = Instant::now();
    for i in 0..rows {
        journal.append(&common::usage_event(i));
    }
    let append_time = appended.elapsed();
    println!(
        "appended {rows} rows to the journal in {:.2} s: {:.2} µs a row",
        append_time.as_secs_f64(),
        append_time.as_secs_f64() * 1e6 / rows as f64
    );

    let stop = CancellationToken::new();
    let settings = WriterSettings {
        batch_size: batch,
        flush_interval: Duration::from_millis(200),
        drain_timeout: Duration::from_secs(60),
    };
    let started = Instant::now();
    let writer = tokio::spawn(run_writer(
        Arc::clone(&journal),
        db.clone(),
        settings,
        stop.clone(),
    ));
    while journal.backlog() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    writer.await?;
    let stored: i64 = match &db {
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT count(*) FROM usage_events")
                .fetch_one(pool)
                .await?
        }
        Db::Sqlite(_) => anyhow::bail!("this benchmark measures PostgreSQL"),
    };
    println!(
        "writer, batches of {batch}: {stored} rows in {:.2} s = {:.0} rows/s into PostgreSQL",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    db.close().await;
    sqlx::query(&format!("DROP DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    Ok(())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
