//! The ledger's journal on the open network: a full disk (a real, filled tmpfs) never loses a
//! row silently, its files are private, and it never replays one database's rows into another.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glm_gateway::config::OnJournalFull;
use glm_gateway::store::Db;
use glm_gateway::usage::{Journal, JournalOptions, FOREIGN_DIR, ID_FILE};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::faults::stray_row;
use crate::helpers::{
    error_of, fresh_postgres_database, spawn_app_with, usage_rows, wait_for_rows, Backend, TestApp,
};
use crate::on_both_backends;

/// A small tmpfs that can be filled to the last byte; `None` where this process may not mount
/// one (the test is then skipped, saying so).
///
/// Mounted and unmounted with the system calls, never a `mount` process: a child started
/// while another test holds a file open shares that file until it execs.
pub struct FullDisk {
    folder: tempfile::TempDir,
}

impl FullDisk {
    pub fn mount() -> Option<FullDisk> {
        let folder = tempfile::tempdir().unwrap();
        #[cfg(target_os = "linux")]
        let mounted = rustix::mount::mount(
            "tmpfs",
            folder.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            c"size=512k,mode=0755",
        )
        .is_ok();
        #[cfg(not(target_os = "linux"))]
        let mounted = false;
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        }
        mounted.then_some(FullDisk { folder })
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.folder.path().join("journal")
    }

    pub fn fill(&self) {
        let mut filler = std::fs::File::create(self.folder.path().join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        while filler.write_all(&block[..1]).is_ok() {}
    }

    /// Gives every byte `fill` took back at once: emptied before it is deleted, so a child
    /// process that shares the file for a moment (the gateway binary other tests start)
    /// cannot keep its blocks.
    pub fn free(&self) {
        let filler = self.folder.path().join("filler");
        std::fs::File::options()
            .write(true)
            .open(&filler)
            .and_then(|file| file.set_len(0))
            .unwrap();
        std::fs::remove_file(filler).unwrap();
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        let _ = rustix::mount::unmount(self.folder.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

fn hello() -> Value {
    json!({"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}]})
}

/// Polls `/readyz` until `check` holds (10 s at most).
async fn wait_for_readyz(app: &TestApp, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let ready = app.get_json("/readyz").await;
        if check(&ready) {
            return ready;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "readyz never {what}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_full_journal_disk_is_reported_and_rows_still_reach_the_database(backend: Backend) {
    let Some(disk) = FullDisk::mount() else {
        return;
    };
    let app = spawn_app_with(backend, |config| {
        config.usage.journal_dir = disk.journal_dir();
        // Rows on disk wait this long; rows only in memory must not.
        config.usage.flush_interval = Duration::from_secs(600);
    })
    .await;
    let key = app.key().await;
    disk.fill();
    for i in 0..6 {
        let mut request = hello();
        request["stream"] = json!(i % 2 == 0);
        let response = app.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let ready = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    let said = ready["degraded"]["journal"].as_str().unwrap_or_default();
    assert!(
        said.contains("cannot write the usage journal") && said.contains("journal"),
        "{ready}"
    );
    wait_for_rows(&app.db, 6).await;
    let metrics = app.get_text("/metrics").await;
    for name in [
        "glm_gateway_ledger_rows_in_memory",
        "glm_gateway_ledger_rows_lost_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }

    disk.free();
    let response = app.chat(&key, hello()).await;
    assert_eq!(response.status(), 200);
    wait_for_readyz(&app, "recovered", |ready| {
        ready["degraded"].get("journal").is_none()
    })
    .await;
    app.shutdown().await;
}

on_both_backends!(a_full_journal_disk_is_reported_and_rows_still_reach_the_database);

/// The database stops answering (a table lock holds the writer's insert) while the journal
/// is on a full disk: past `memory_rows` the `refuse` policy turns requests away, OpenAI-shaped,
/// and accepts them again once the database takes the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_memory_bound_the_refuse_policy_answers_503_until_the_database_takes_rows() {
    let Some(disk) = FullDisk::mount() else {
        return;
    };
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.usage.journal_dir = disk.journal_dir();
        config.usage.memory_rows = 2;
        config.usage.on_journal_full = OnJournalFull::Refuse;
    })
    .await;
    let key = app.key().await;
    disk.fill();
    let mut lock = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE usage_events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(app.chat(&key, hello()).await.status(), 200);
    }
    let refused = app.chat(&key, hello()).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let error = error_of(refused).await;
    assert_eq!(error["code"], "ledger_unavailable", "{error}");
    let ready = app.get_json("/readyz").await;
    assert!(ready["degraded"]["journal"].is_string(), "{ready}");

    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    let started = Instant::now();
    loop {
        let response = app.chat(&key, hello()).await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(started.elapsed() < Duration::from_secs(10), "still refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_rows(&app.db, 3).await;
    app.shutdown().await;
}

/// DATABASE_URL changes between runs while the journal folder stays: the rows journaled for
/// database A are set aside, never inserted into database B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_journaled_for_one_database_are_not_replayed_into_another() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("journal");
    let db_a = Db::connect(&fresh_postgres_database().await).await.unwrap();
    db_a.migrate().await.unwrap();
    let id_a = db_a.database_id().await.unwrap();
    assert_eq!(db_a.database_id().await.unwrap(), id_a, "made once");
    {
        let options = JournalOptions {
            database_id: Some(id_a.clone()),
            ..JournalOptions::default()
        };
        let journal = Journal::open_with(&dir, &options).unwrap();
        for id in ["a-1", "a-2", "a-3"] {
            journal.append(&stray_row(id, None));
        }
    }

    let app = spawn_app_with(Backend::Postgres, |config| {
        config.usage.journal_dir = dir.clone()
    })
    .await;
    assert_ne!(app.db.database_id().await.unwrap(), id_a);
    let key = app.key().await;
    assert_eq!(app.chat(&key, hello()).await.status(), 200);
    let rows = wait_for_rows(&app.db, 1).await;
    assert!(!rows[0].request_id.starts_with("a-"));
    let ready = app.get_json("/readyz").await;
    let said = ready["degraded"]["journal_foreign"]
        .as_str()
        .unwrap_or_default();
    assert!(
        said.contains(&id_a) && said.contains("3 usage rows"),
        "{ready}"
    );
    let url_b = app.database_url.clone();
    app.shutdown().await;
    let db_b = Db::connect(&url_b).await.unwrap();
    let ids: Vec<String> = usage_rows(&db_b)
        .await
        .into_iter()
        .map(|row| row.request_id)
        .collect();
    assert!(ids.iter().all(|id| !id.starts_with("a-")), "{ids:?}");
    assert_eq!(ids.len(), 1);
    let aside = dir.join(FOREIGN_DIR).join(&id_a);
    let mut lines = 0;
    for entry in std::fs::read_dir(&aside).unwrap() {
        lines += std::fs::read_to_string(entry.unwrap().path())
            .unwrap()
            .lines()
            .count();
    }
    assert_eq!(lines, 3, "A's rows wait in {}", aside.display());
    assert!(usage_rows(&db_a).await.is_empty());
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The SQLite file holds key hashes (and prompt text with `store_content`), the journal rows:
/// neither is readable by other users, whatever the umask.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_and_the_journal_are_private() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("journal");
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.usage.journal_dir = dir.clone();
        config.usage.store_content = true;
    })
    .await;
    let key = app.key().await;
    assert_eq!(app.chat(&key, hello()).await.status(), 200);
    wait_for_rows(&app.db, 1).await;
    let database = PathBuf::from(app.database_url.trim_start_matches("sqlite://"));
    assert_eq!(mode(&database), 0o600, "{}", database.display());
    let wal = PathBuf::from(format!("{}-wal", database.display()));
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "{}", wal.display());
    }
    assert_eq!(mode(&dir), 0o700);
    assert!(
        dir.join(ID_FILE).exists(),
        "bound to the SQLite database too"
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    app.shutdown().await;
}

#[test]
fn the_journal_settings_are_read_from_the_usage_section() {
    let none = |_: &str| None;
    let config = glm_gateway::config::Config::from_toml("", &none).unwrap();
    assert_eq!(config.usage.memory_rows, 10_000);
    assert_eq!(config.usage.on_journal_full, OnJournalFull::Serve);
    let text = "[usage]\nmemory_rows = 5\non_journal_full = \"refuse\"\n";
    let config = glm_gateway::config::Config::from_toml(text, &none).unwrap();
    assert_eq!(config.usage.memory_rows, 5);
    assert_eq!(config.usage.on_journal_full, OnJournalFull::Refuse);
    let wrong = "[usage]\non_journal_full = \"drop\"\n";
    assert!(glm_gateway::config::Config::from_toml(wrong, &none).is_err());
    let zero = "[usage]\nmemory_rows = 0\n";
    let error = glm_gateway::config::Config::from_toml(zero, &none).unwrap_err();
    assert_eq!(error.setting, "usage.memory_rows");
}
