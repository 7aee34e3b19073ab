//! The `[usage]` section: the ledger's journal, writer, retention and content settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{positive, ConfigError};

#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// Without the ledger no usage is recorded (for measuring its cost; never in production).
    pub enabled: bool,
    /// The local append-only journal that rows pass through on their way to the database.
    pub journal_dir: PathBuf,
    /// The writer inserts this many rows at once, or fewer after `flush_interval`.
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// Days of `usage_events` kept; older days are rolled up into `usage_rollups` and dropped.
    /// `None` keeps everything.
    pub retention_days: Option<u32>,
    /// Store prompt and completion text in each row (off: rows carry counts only).
    pub store_content: bool,
    /// How long a stream is still read after its client left, to learn the usage.
    pub drain_timeout: Duration,
    /// Rows held in memory while the journal cannot be written (a full disk).
    pub memory_rows: u64,
    /// What happens once `memory_rows` rows are held in memory.
    pub on_journal_full: OnJournalFull,
}

/// `[usage] on_journal_full`: with the journal unwritable and `memory_rows` rows in memory,
/// keep serving and lose (and count) rows, or refuse requests with 503 `ledger_unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnJournalFull {
    #[default]
    Serve,
    Refuse,
}

/// One price, in CNY, effective from `since` (UTC) until a later entry for the same model.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileUsage {
    enabled: Option<bool>,
    journal_dir: Option<PathBuf>,
    batch_size: Option<usize>,
    flush_interval_ms: Option<u64>,
    retention_days: Option<u32>,
    store_content: Option<bool>,
    drain_timeout_secs: Option<u64>,
    memory_rows: Option<u64>,
    on_journal_full: Option<OnJournalFull>,
}

pub(super) fn usage_config(
    file: FileUsage,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<UsageConfig, ConfigError> {
    let journal_dir = env("GLM_GATEWAY_JOURNAL_DIR")
        .map(PathBuf::from)
        .or(file.journal_dir)
        .unwrap_or_else(|| PathBuf::from("glm-gateway-journal"));
    Ok(UsageConfig {
        enabled: file.enabled.unwrap_or(true),
        journal_dir,
        batch_size: positive("usage.batch_size", file.batch_size.unwrap_or(500))?,
        flush_interval: Duration::from_millis(positive(
            "usage.flush_interval_ms",
            file.flush_interval_ms.unwrap_or(200),
        )?),
        retention_days: match file.retention_days {
            Some(0) => None,
            Some(days) => Some(days),
            None => Some(180),
        },
        store_content: file.store_content.unwrap_or(false),
        drain_timeout: Duration::from_secs(file.drain_timeout_secs.unwrap_or(30)),
        memory_rows: positive("usage.memory_rows", file.memory_rows.unwrap_or(10_000))?,
        on_journal_full: file.on_journal_full.unwrap_or_default(),
    })
}
