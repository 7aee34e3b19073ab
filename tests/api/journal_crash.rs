//! `kill -9` of the real binary with its journal on a full disk: rows held in memory go to the
//! database at once, so the crash costs at most the rows in memory, never the whole burst.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::faults::{create_key_at, gateway_env, start_gateway};
use crate::helpers::{fresh_postgres_database, request_id, usage_rows};
use crate::journal::FullDisk;

/// Rows the gateway may hold in memory: the most a crash may cost.
const MEMORY_ROWS: usize = 20;

/// Sends requests from 8 workers until `count` have completed; returns their request ids.
async fn burst(url: &str, key: &str, count: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let completed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (http, url, key, completed) = (
            http.clone(),
            url.to_owned(),
            key.to_owned(),
            Arc::clone(&completed),
        );
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                if completed.lock().unwrap().len() >= count {
                    return;
                }
                let stream = (worker + i) % 2 == 0;
                let body = json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "#chunks 3"}], "stream": stream});
                let response = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let id = request_id(&response);
                response.bytes().await.unwrap();
                completed.lock().unwrap().push(id);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let completed = completed.lock().unwrap().clone();
    completed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_the_journal_on_a_full_disk_loses_at_most_the_rows_in_memory() {
    let Some(disk) = FullDisk::mount() else {
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let upstream = crate::helpers::spawn_emulator(Duration::from_millis(2)).await;
    let database_url = fresh_postgres_database().await;
    let env = gateway_env(&database_url, upstream, &disk.journal_dir());
    // Rows on disk would wait ten minutes; rows only in memory must not wait at all.
    let config = folder.path().join("gateway.toml");
    let settings = format!(
        "[usage]\nflush_interval_ms = 600000\nbatch_size = 1000000\nmemory_rows = {MEMORY_ROWS}\n"
    );
    std::fs::write(&config, settings).unwrap();

    let (mut gateway, url) = start_gateway(&env, &config).await;
    let http = reqwest::Client::new();
    let (key, _) = create_key_at(&url, "t").await;
    disk.fill();

    let completed = burst(&url, &key, 300).await;
    let ready: Value = http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready["degraded"]["journal"].is_string(), "{ready}");
    // Past the memory bound the `serve` policy drops rows and counts them: those are allowed
    // to be missing too, and only those.
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lost: usize = metrics
        .lines()
        .find_map(|line| line.strip_prefix("glm_gateway_ledger_rows_lost_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(0, |n| n as usize);
    gateway.start_kill().unwrap();
    gateway.wait().await.unwrap();

    let db = glm_gateway::store::Db::connect(&database_url)
        .await
        .unwrap();
    let started = Instant::now();
    let stored = loop {
        let stored: std::collections::HashSet<String> = usage_rows(&db)
            .await
            .into_iter()
            .map(|row| row.request_id)
            .collect();
        if stored.len() + MEMORY_ROWS + lost >= completed.len()
            || started.elapsed() > Duration::from_secs(5)
        {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let missing = completed.iter().filter(|id| !stored.contains(*id)).count();
    assert!(
        missing <= MEMORY_ROWS + lost,
        "{missing} of {} completed requests have no row ({lost} counted as lost)",
        completed.len()
    );
}
