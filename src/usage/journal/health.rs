//! The ledger's health as `/readyz` and `/metrics` see it: commits and insert failures
//! reported by the writer, and rows the database refuses, set aside beside the segments.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::files::{private_file, SetAside, REJECTED_FILE};
use super::{
    lock, Journal, UsageEvent, METRIC_ROWS_REJECTED, METRIC_ROWS_WRITTEN, METRIC_WRITE_ERRORS,
};

/// The ledger's state as `/readyz` and `/metrics` see it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerHealth {
    /// Rows appended (or found at open) and not yet committed to the database.
    pub backlog: u64,
    /// When database inserts started failing; `None` while they work.
    pub failing_since: Option<DateTime<Utc>>,
    /// The most recent insert error, kept after recovery for diagnosis.
    pub last_error: Option<String>,
    /// Rows the database reported as newly inserted since this process started.
    pub rows_written: u64,
    /// When journal writes started failing (a full disk, a read-only folder); `None` while
    /// they work.
    pub journal_failing_since: Option<DateTime<Utc>>,
    /// The error that started the journal failure.
    pub journal_error: Option<String>,
    /// Rows that exist only in memory: what a `kill -9` would lose now.
    pub rows_in_memory: u64,
    /// Rows lost since this process started.
    pub rows_lost: u64,
    /// Rows of another database found in the folder at open and set aside.
    pub set_aside: Option<SetAside>,
}

#[derive(Default)]
pub(super) struct Health {
    failing_since: Option<DateTime<Utc>>,
    last_error: Option<String>,
    rows_written: u64,
}

impl Journal {
    pub fn health(&self) -> LedgerHealth {
        let (journal_failing_since, journal_error) = lock(&self.tail)
            .failing
            .clone()
            .map_or((None, None), |(since, error)| (Some(since), Some(error)));
        let health = lock(&self.health);
        LedgerHealth {
            backlog: self.backlog(),
            failing_since: health.failing_since,
            last_error: health.last_error.clone(),
            rows_written: health.rows_written,
            journal_failing_since,
            journal_error,
            rows_in_memory: self.memory.held(),
            rows_lost: self.memory.lost(),
            set_aside: self.set_aside.clone(),
        }
    }

    /// A batch of `rows` committed, `inserted` of them new to the database and `from_memory`
    /// of them held in memory. Returns when failing started if this ends a failure.
    pub(in crate::usage) fn record_commit(
        &self,
        rows: u64,
        inserted: u64,
        from_memory: u64,
    ) -> Option<DateTime<Utc>> {
        self.forget(rows);
        self.memory.release(from_memory);
        self.publish_backlog();
        metrics::counter!(METRIC_ROWS_WRITTEN).increment(inserted);
        let mut health = lock(&self.health);
        health.rows_written += inserted;
        health.failing_since.take()
    }

    /// An insert failed. Returns true when this starts a failure.
    pub(in crate::usage) fn record_failure(&self, error: &str) -> bool {
        metrics::counter!(METRIC_WRITE_ERRORS).increment(1);
        let mut health = lock(&self.health);
        health.last_error = Some(error.to_owned());
        let starts = health.failing_since.is_none();
        if starts {
            health.failing_since = Some(Utc::now());
        }
        starts
    }

    /// Sets aside a row the database refuses for what it is (not for being unreachable), so
    /// that it cannot hold up the rows behind it: it goes to `rejected.jsonl` beside the
    /// segments, with the reason, for an operator to look at and load by hand.
    pub(in crate::usage) fn reject(&self, row: &UsageEvent, reason: &str) {
        metrics::counter!(METRIC_ROWS_REJECTED).increment(1);
        tracing::error!(request_id = %row.request_id, %reason, "the database refuses a usage row; set aside in rejected.jsonl");
        let line = serde_json::json!({ "reason": reason, "row": row });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let written = private_file()
            .create(true)
            .append(true)
            .open(self.dir.join(REJECTED_FILE))
            .and_then(|mut file| file.write_all(&bytes));
        if let Err(error) = written {
            self.memory.count_lost(1);
            tracing::error!(request_id = %row.request_id, %error, "a refused usage row could not be set aside and is lost");
        }
    }
}
