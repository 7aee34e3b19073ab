//! Faults the ledger must survive: a database that goes away and comes back, and `kill -9`
//! in the middle of a burst.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    fresh_postgres_database, request_id, spawn_app_with, usage_rows, wait_for_rows, Backend,
    ADMIN_TOKEN, UPSTREAM_KEY,
};

/// A TCP forwarder to Postgres that can be switched off (refusing and cutting connections).
struct Switch {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
}

impl Switch {
    async fn to(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let (target, accept_up, accept_cut) =
            (target.to_owned(), Arc::clone(&up), Arc::clone(&cut));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    continue;
                }
                let cancelled = accept_cut.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cancelled.cancelled() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_served_while_the_database_is_down_and_every_row_arrives_after() {
    let direct = fresh_postgres_database().await;
    let switch = Switch::to("127.0.0.1:5432").await;
    let via_switch = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", switch.port));
    assert_ne!(
        direct, via_switch,
        "TEST_DATABASE_URL must point at 127.0.0.1:5432 for this test"
    );
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.database_url = via_switch.into()
    })
    .await;
    let key = app.key().await;
    let hello = json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}]});
    let mut ids = Vec::new();
    for _ in 0..10 {
        let response = app.chat(&key, hello.clone()).await;
        ids.push(request_id(&response));
    }
    wait_for_rows(&app.db, 10).await;

    switch.down();
    for i in 0..30 {
        let mut request = hello.clone();
        request["stream"] = json!(i % 2 == 0);
        let response = app.chat(&key, request).await;
        assert_eq!(
            response.status(),
            200,
            "served from the cached keys while the database is down"
        );
        ids.push(request_id(&response));
        response.bytes().await.unwrap();
    }
    let started = Instant::now();
    loop {
        let ready: Value = app.get_json("/readyz").await;
        if ready["degraded"]["ledger"].is_string() {
            assert_eq!(ready["status"], "degraded");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "readyz never said the ledger is behind: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = app.get_text("/metrics").await;
    assert!(metrics.contains("glm_gateway_ledger_backlog"), "{metrics}");

    switch.restore();
    let check = glm_gateway::store::Db::connect(&direct).await.unwrap();
    let started = Instant::now();
    while usage_rows(&check).await.len() < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "rows did not arrive after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stored: Vec<String> = usage_rows(&check)
        .await
        .into_iter()
        .map(|row| row.request_id)
        .collect();
    stored.sort();
    ids.sort();
    assert_eq!(stored, ids);
    app.shutdown().await;
}

/// What the real binary needs besides its config file: the database, the upstream (the
/// emulator at `upstream`), the admin token and the journal folder.
pub(crate) fn gateway_env(
    database_url: &str,
    upstream: String,
    journal: &std::path::Path,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("ZHIPUAI_API_KEY", UPSTREAM_KEY.to_owned()),
        ("ZHIPUAI_BASE_URL", upstream),
        ("GLM_GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("GLM_GATEWAY_JOURNAL_DIR", journal.display().to_string()),
    ]
}

/// A key made through the admin API of the gateway at `url`, for `team`: (the key, its id).
pub(crate) async fn create_key_at(url: &str, team: &str) -> (String, String) {
    let created: Value = reqwest::Client::new()
        .post(format!("{url}/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "test", "team": team}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = |field: &str| created[field].as_str().unwrap().to_owned();
    (text("key"), text("id"))
}

/// The real binary, started with `serve`; returns it and its URL.
pub(crate) async fn start_gateway(
    env: &[(&str, String)],
    config: &std::path::Path,
) -> (Child, String) {
    start_gateway_with(&[], env, config, Stdio::null()).await
}

/// [`start_gateway`] with more arguments before `serve` (`--log-format json`), its stderr (its
/// log) going to `stderr`: piped, it is read with `wait_with_output` after a kill.
pub(crate) async fn start_gateway_with(
    args: &[&str],
    env: &[(&str, String)],
    config: &std::path::Path,
    stderr: Stdio,
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_glm-gateway"))
        .arg("--config")
        .arg(config)
        .args(args)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("GLM_GATEWAY_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(url) = line.strip_prefix("glm-gateway listening on ") {
            return (child, url.to_owned());
        }
    }
    panic!("the gateway did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_completed_request_and_duplicates_none() {
    let folder = tempfile::tempdir().unwrap();
    let upstream = crate::helpers::spawn_emulator(Duration::from_millis(5)).await;
    let database_url = fresh_postgres_database().await;
    let env = gateway_env(&database_url, upstream, &folder.path().join("journal"));
    // The first run holds rows back (a long flush interval), so the kill finds them in the journal.
    let holding = folder.path().join("holding.toml");
    std::fs::write(
        &holding,
        "[usage]\nflush_interval_ms = 600000\nbatch_size = 1000000\n",
    )
    .unwrap();
    let normal = folder.path().join("normal.toml");
    std::fs::write(&normal, "").unwrap();

    let (mut gateway, url) = start_gateway(&env, &holding).await;
    let http = reqwest::Client::new();
    let (key, _) = create_key_at(&url, "t").await;

    let completed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for worker in 0..16 {
        let (http, url, key, completed) = (
            http.clone(),
            url.clone(),
            key.clone(),
            Arc::clone(&completed),
        );
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let stream = (worker + i) % 2 == 0;
                let body = json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "#chunks 3"}], "stream": stream});
                let Ok(response) = http.post(format!("{url}/v1/chat/completions")).bearer_auth(&key).json(&body).send().await else { return };
                let id = request_id(&response);
                let Ok(text) = response.text().await else { return };
                let whole = if stream { text.ends_with("data: [DONE]\n\n") } else { text.contains("\"usage\"") };
                if whole {
                    completed.lock().unwrap().push(id);
                }
            }
        }));
    }
    while completed.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.start_kill().unwrap();
    gateway.wait().await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let completed = completed.lock().unwrap().clone();
    let db = glm_gateway::store::Db::connect(&database_url)
        .await
        .unwrap();
    assert!(
        usage_rows(&db).await.is_empty(),
        "the first run wrote nothing to the database itself"
    );

    let (mut restarted, _) = start_gateway(&env, &normal).await;
    let started = Instant::now();
    let rows = loop {
        let rows = usage_rows(&db).await;
        if rows.len() >= completed.len() || started.elapsed() > Duration::from_secs(20) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stored: std::collections::HashSet<&str> =
        rows.iter().map(|row| row.request_id.as_str()).collect();
    assert_eq!(stored.len(), rows.len(), "no request_id twice");
    let missing: Vec<&String> = completed
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} completed requests have no row",
        missing.len(),
        completed.len()
    );
    restarted.start_kill().unwrap();
}

/// A row that did not come through a request, for tests that put rows in by hand.
pub(crate) fn stray_row(id: &str, cost: Option<f64>) -> glm_gateway::usage::UsageEvent {
    glm_gateway::usage::UsageEvent {
        request_id: id.into(),
        created_at: chrono::Utc::now(),
        api_key_id: "k".into(),
        team: "t".into(),
        endpoint: "chat".into(),
        requested_model: Some("glm-4.7".into()),
        upstream_model: Some("glm-4.7".into()),
        streamed: false,
        status_code: 200,
        error_code: None,
        prompt_tokens: 1,
        completion_tokens: 1,
        total_tokens: 2,
        cached_tokens: 0,
        image_count: 0,
        latency_ms: 1,
        usage_source: glm_gateway::usage::UsageSource::Upstream,
        client_disconnected: false,
        cost: cost.map(|c| c.to_string().parse().unwrap()),
        prompt_text: None,
        emulated: None,
        completion_text: None,
    }
}

/// A row the database refuses for its content is set aside; the rows around it arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_database_refuses_is_set_aside_and_holds_nothing_up() {
    let folder = tempfile::tempdir().unwrap();
    let journal_dir = folder.path().join("journal");
    {
        let journal = glm_gateway::usage::Journal::open(&journal_dir).unwrap();
        journal.append(&stray_row("before", Some(0.5)));
        // NUMERIC(20,10) holds less than 10^10: Postgres refuses this row for what it is.
        journal.append(&stray_row("refused", Some(1e15)));
        journal.append(&stray_row("after", Some(0.5)));
    }
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.usage.journal_dir = journal_dir.clone()
    })
    .await;
    let rows = wait_for_rows(&app.db, 2).await;
    let ids: Vec<&str> = rows.iter().map(|row| row.request_id.as_str()).collect();
    assert_eq!(ids, ["before", "after"]);
    let rejected =
        std::fs::read_to_string(journal_dir.join(glm_gateway::usage::REJECTED_FILE)).unwrap();
    let line: Value = serde_json::from_str(rejected.trim()).unwrap();
    assert_eq!(line["row"]["request_id"], "refused");
    assert!(
        line["reason"].as_str().unwrap().contains("numeric"),
        "{line}"
    );
    app.shutdown().await;
}
