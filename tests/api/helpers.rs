//! The test harness: a gateway on port 0 with a fresh database (a new Postgres database or a
//! SQLite file), in front of the GLM emulator on its own port 0.

use std::time::Duration;

use glm_gateway::app::{App, BuildOptions};
use glm_gateway::config::Config;
use glm_gateway::emulator::{self, EmulatorConfig, EmulatorHandle};
use glm_gateway::store::Db;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const UPSTREAM_KEY: &str = "test-upstream-id.test-upstream-secret-0123456789";
pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub emulator: EmulatorHandle,
    pub db: Db,
    pub database_url: String,
    stop: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    folder: tempfile::TempDir,
}

/// Runs `$test(Backend)` once on Postgres and once on SQLite, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test($crate::helpers::Backend::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test($crate::helpers::Backend::Sqlite).await;
            }
        }
    )*};
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let database_url = match backend {
        Backend::Postgres => Some(fresh_postgres_database().await),
        Backend::Sqlite => None,
    };
    start_app(database_url, tweak).await
}

/// Another gateway (a replica, with its own emulator and journal) on the database of `first`.
pub async fn spawn_replica(first: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    start_app(Some(first.database_url.clone()), tweak).await
}

/// A gateway on `database_url`, or on a new SQLite file when `None`.
async fn start_app(database_url: Option<String>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let folder = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator_addr = listener.local_addr().unwrap();
    let emulator = emulator::spawn(
        listener,
        EmulatorConfig {
            api_keys: vec![UPSTREAM_KEY.into()],
            chunk_delay: Duration::from_millis(5),
        },
    );
    let env = |name: &str| match name {
        "GLM_GATEWAY_LISTEN" => Some("127.0.0.1:0".to_owned()),
        "GLM_GATEWAY_ADMIN_TOKEN" => Some(ADMIN_TOKEN.to_owned()),
        "ZHIPUAI_API_KEY" => Some(UPSTREAM_KEY.to_owned()),
        "ZHIPUAI_BASE_URL" => Some(format!("http://{emulator_addr}/api/paas/v4")),
        _ => None,
    };
    let mut config = Config::from_toml(
        "[models]\n\"gpt-4*\" = \"glm-4.7\"\n\"gpt-4o*\" = \"glm-4.6v\"\n\"old-glm\" = \"glm-4\"\n",
        &env,
    )
    .unwrap();
    config.database_url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", folder.path().join("test.db").display()))
        .into();
    config.usage.journal_dir = folder.path().join("journal");
    config.usage.flush_interval = Duration::from_millis(20);
    tweak(&mut config);
    let app = App::build(config, BuildOptions::default()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let db = app.state().db.clone();
    let database_url = app.state().config.database_url.expose().to_owned();
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
    TestApp {
        base,
        http: reqwest::Client::new(),
        emulator,
        db,
        database_url,
        stop,
        server,
        folder,
    }
}

/// A new, empty database on the test Postgres (`TEST_DATABASE_URL`, default the local server).
pub async fn fresh_postgres_database() -> String {
    let server = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let server = server.trim_end_matches('/').to_owned();
    let name = format!("glm_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{server}/{name}")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a key through the admin API; returns the whole answer (with `key` and `id`).
    pub async fn create_key(&self, body: Value) -> Value {
        let response = self
            .http
            .post(self.url("/admin/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "key creation failed");
        response.json().await.unwrap()
    }

    /// A key for team `test` that may use every model.
    pub async fn key(&self) -> String {
        self.create_key(json!({"name": "test", "team": "test"}))
            .await["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// GET `path` without a key and read the answer as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// GET `path` without a key and read the answer as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn chat(&self, key: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Begins a graceful shutdown and waits for the server to finish; returns the folder that
    /// holds the SQLite database and the journal, which is removed when dropped.
    pub async fn shutdown(self) -> tempfile::TempDir {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
        self.folder
    }

    pub fn begin_shutdown(&self) {
        self.stop.cancel();
    }
}

/// The `error` object of an OpenAI-shaped error answer, checking the shape on the way.
pub async fn error_of(response: reqwest::Response) -> Value {
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    let error = body["error"].clone();
    for field in ["message", "type", "param", "code"] {
        assert!(error.get(field).is_some(), "error lacks `{field}`: {body}");
    }
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    error
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            assert!(
                event.starts_with("data: ") && !event.contains('\n'),
                "not a single data line: {event:?}"
            );
            event["data: ".len()..].to_owned()
        })
        .collect()
}

/// One `usage_events` row, as the tests look at it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageRow {
    pub request_id: String,
    pub api_key_id: String,
    pub team: String,
    pub endpoint: String,
    pub requested_model: Option<String>,
    pub upstream_model: Option<String>,
    pub streamed: bool,
    pub status_code: i64,
    pub error_code: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cached_tokens: i64,
    pub image_count: i64,
    pub latency_ms: i64,
    pub usage_source: String,
    pub client_disconnected: bool,
    pub cost: Option<f64>,
    pub emulated: Option<String>,
    pub prompt_text: Option<String>,
    pub completion_text: Option<String>,
}

pub async fn usage_rows(db: &Db) -> Vec<UsageRow> {
    const SQL: &str = "SELECT request_id, api_key_id, team, endpoint, requested_model, upstream_model, \
        streamed, CAST(status_code AS BIGINT) AS status_code, error_code, prompt_tokens, completion_tokens, \
        total_tokens, cached_tokens, image_count, latency_ms, usage_source, client_disconnected, CAST(cost AS DOUBLE PRECISION) AS cost, \
        emulated, prompt_text, completion_text FROM usage_events ORDER BY created_at, request_id";
    let rows = match db {
        Db::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
        Db::Sqlite(pool) => {
            sqlx::query_as(&SQL.replace("DOUBLE PRECISION", "REAL"))
                .fetch_all(pool)
                .await
        }
    };
    rows.unwrap()
}

/// Waits (up to 10 s) until the ledger holds `count` rows, then returns them.
pub async fn wait_for_rows(db: &Db, count: usize) -> Vec<UsageRow> {
    let started = std::time::Instant::now();
    loop {
        let rows = usage_rows(db).await;
        if rows.len() >= count || started.elapsed() > Duration::from_secs(10) {
            assert_eq!(rows.len(), count, "rows in usage_events");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The row of one response, by its `x-request-id`.
pub async fn row_of(db: &Db, request_id: &str) -> UsageRow {
    let started = std::time::Instant::now();
    loop {
        if let Some(row) = usage_rows(db)
            .await
            .into_iter()
            .find(|row| row.request_id == request_id)
        {
            return row;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no row for {request_id}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The emulator alone on port 0, for tests that run the real binary; returns its base URL.
pub async fn spawn_emulator(chunk_delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/api/paas/v4", listener.local_addr().unwrap());
    emulator::spawn(
        listener,
        EmulatorConfig {
            api_keys: vec![UPSTREAM_KEY.into()],
            chunk_delay,
        },
    );
    upstream
}

/// A key row without limits, as `keys create` would store it.
pub fn plain_key(
    id: &str,
    name: &str,
    team: &str,
    secret_hash: &str,
) -> glm_gateway::store::NewKey {
    glm_gateway::store::NewKey {
        id: id.into(),
        name: name.into(),
        team: team.into(),
        secret_hash: secret_hash.into(),
        models: None,
        rpm: None,
        tpm: None,
        token_budget: None,
        cost_budget: None,
        budget_period: "none".into(),
        expires_at: None,
    }
}
