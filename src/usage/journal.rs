//! The usage journal: rows appended as JSON lines to local segment files, the queue between the
//! request path and the database writer. Owns the directory, its lock, the segment files, the
//! rows held in memory while no segment can be written, and the ledger's health; it never
//! touches the database.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::UsageEvent;
use crate::config::OnJournalFull;
use files::{create_private_dir, create_segment, lock_dir, naming};
use memory::Memory;
use recent::Recent;

pub(super) use files::{list_segments, segment_path};
pub use files::{SetAside, FOREIGN_DIR, ID_FILE, REJECTED_FILE};
use health::Health;
pub use health::LedgerHealth;

mod files;
mod health;
mod memory;
mod recent;
#[cfg(test)]
pub(super) mod tests;

/// A segment that has passed this size is closed and a new one started, so the writer can
/// delete committed rows a segment at a time.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

pub(super) const METRIC_BACKLOG: &str = "glm_gateway_ledger_backlog";
pub(super) const METRIC_ROWS_WRITTEN: &str = "glm_gateway_ledger_rows_written_total";
pub(super) const METRIC_WRITE_ERRORS: &str = "glm_gateway_ledger_write_errors_total";
pub(super) const METRIC_JOURNAL_ERRORS: &str = "glm_gateway_ledger_journal_errors_total";
pub(super) const METRIC_ROWS_LOST: &str = "glm_gateway_ledger_rows_lost_total";
pub(super) const METRIC_ROWS_REJECTED: &str = "glm_gateway_ledger_rows_rejected_total";
pub(super) const METRIC_ROWS_IN_MEMORY: &str = "glm_gateway_ledger_rows_in_memory";
pub(super) const METRIC_ROWS_SET_ASIDE: &str = "glm_gateway_ledger_rows_set_aside_total";

/// How a journal holds rows it cannot write, and which database it belongs to.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Rows held in memory while no segment can be written (`[usage] memory_rows`).
    pub memory_rows: u64,
    /// What happens past `memory_rows` (`[usage] on_journal_full`).
    pub on_full: OnJournalFull,
    /// The identity of the database the rows go to. Rows the folder holds for another
    /// database are set aside at open. `None` leaves the folder unbound.
    pub database_id: Option<String>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            memory_rows: 10_000,
            on_full: OnJournalFull::Serve,
            database_id: None,
        }
    }
}

/// An append-only journal of usage rows in `dir/segment-<20-digit sequence>.jsonl` files.
pub struct Journal {
    dir: PathBuf,
    segment_limit: u64,
    /// Held for the journal's life; the OS releases it however the process ends.
    _lock: std::fs::File,
    tail: Mutex<Tail>,
    /// Sequence of the newest segment. It is raised only after the last write to the previous
    /// segment, so a reader that sees it above its own segment knows that segment is complete.
    newest: AtomicU64,
    /// The oldest segment present at open: where the writer starts reading.
    first: u64,
    memory: Memory,
    /// Rows just written, kept parsed for the writer.
    recent: Recent,
    /// Raised before a row is written and lowered once it is committed (or lost), so it never
    /// dips below the true count while a fast writer commits a row its appender has not counted.
    backlog: AtomicU64,
    /// A row reached a segment: wakes a writer with an empty batch (one with rows waits for
    /// its flush, so a busy gateway wakes it once a flush, not once a row).
    appended: Notify,
    /// A row is held in memory (the segment would not take it): wakes the writer at once.
    held: Notify,
    health: Mutex<Health>,
    set_aside: Option<SetAside>,
}

/// The segment being appended to.
struct Tail {
    /// `None` after a write that failed part way: the file may end in a partial line, so no
    /// row may follow it.
    file: Option<std::fs::File>,
    len: u64,
    next_seq: u64,
    /// Since when, and why, no segment can be written.
    failing: Option<(DateTime<Utc>, String)>,
}

impl Journal {
    /// Opens (creating, owner-only) `dir`, takes an exclusive lock on `dir/LOCK` (a second
    /// process on the same dir gets an error naming the dir), and starts a new segment after
    /// any left by an earlier process, which are read first.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        Self::open_with(dir, &JournalOptions::default())
    }

    pub fn open_with(dir: &Path, options: &JournalOptions) -> io::Result<Journal> {
        Self::open_inner(dir, options, SEGMENT_BYTES)
    }

    #[cfg(test)]
    pub(super) fn open_with_limit(dir: &Path, segment_limit: u64) -> io::Result<Journal> {
        Self::open_inner(dir, &JournalOptions::default(), segment_limit)
    }

    fn open_inner(dir: &Path, options: &JournalOptions, segment_limit: u64) -> io::Result<Self> {
        let named = |err| naming(dir, err);
        create_private_dir(dir).map_err(named)?;
        let lock = lock_dir(dir)?;
        let set_aside = match &options.database_id {
            Some(id) => files::bind(dir, id).map_err(named)?,
            None => None,
        };
        if let Some(aside) = &set_aside {
            metrics::counter!(METRIC_ROWS_SET_ASIDE).increment(aside.rows);
            tracing::warn!(rows = aside.rows, journaled_for = %aside.database_id, folder = %aside.folder.display(), "the usage journal holds rows of another database (DATABASE_URL changed?); set aside, not inserted here");
        }
        let existing = list_segments(dir).map_err(named)?;
        let mut backlog = 0;
        for seq in &existing {
            backlog += files::count_lines(&segment_path(dir, *seq)).map_err(named)?;
        }
        let seq = existing.last().map_or(1, |last| last + 1);
        let file = create_segment(dir, seq).map_err(named)?;
        if backlog > 0 {
            tracing::info!(rows = backlog, segments = existing.len(), dir = %dir.display(), "usage journal holds rows from an earlier run; the writer replays them");
        }
        metrics::gauge!(METRIC_BACKLOG).set(backlog as f64);
        // Shown from the start, at 0, so that dashboards and alerts see them before any trouble.
        let counters = [
            METRIC_ROWS_WRITTEN,
            METRIC_WRITE_ERRORS,
            METRIC_JOURNAL_ERRORS,
            METRIC_ROWS_REJECTED,
            METRIC_ROWS_SET_ASIDE,
        ];
        for name in counters {
            metrics::counter!(name).increment(0);
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            segment_limit,
            _lock: lock,
            tail: Mutex::new(Tail {
                file: Some(file),
                len: 0,
                next_seq: seq + 1,
                failing: None,
            }),
            newest: AtomicU64::new(seq),
            first: existing.first().copied().unwrap_or(seq),
            memory: Memory::new(options.memory_rows, options.on_full),
            recent: Recent::default(),
            backlog: AtomicU64::new(backlog),
            appended: Notify::new(),
            held: Notify::new(),
            health: Mutex::new(Health::default()),
            set_aside,
        })
    }

    /// Appends one row as one JSON line and wakes the writer. Never fails the caller: a row the
    /// journal cannot take is held in memory for the writer (up to `memory_rows`), else lost,
    /// logged and counted.
    pub fn append(&self, event: &UsageEvent) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let written = encode(event)
            .is_some_and(|line| self.write_line_keeping(&line, false, Some(event)).is_ok());
        if written {
            self.appended.notify_one();
        } else if self.memory.keep(event) {
            self.held.notify_one();
        } else {
            self.forget(1);
        }
    }

    /// Whether new requests may be served: false only under `on_journal_full = "refuse"` with
    /// `memory_rows` rows held in memory. One atomic load.
    pub fn accepting(&self) -> bool {
        self.memory.accepting()
    }

    /// Rows appended (or found in old segments at open) and not yet committed.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Acquire)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One `write` of a whole line, under the tail lock so lines never interleave.
    pub(super) fn write_line(&self, line: &[u8], force_reopen: bool) -> io::Result<()> {
        self.write_line_keeping(line, force_reopen, None)
    }

    /// `write_line`, keeping `row` (the line's row) parsed for the writer once it is written.
    fn write_line_keeping(
        &self,
        line: &[u8],
        force_reopen: bool,
        row: Option<&UsageEvent>,
    ) -> io::Result<()> {
        let mut tail = lock(&self.tail);
        self.ensure_segment(&mut tail, force_reopen);
        let Some(file) = tail.file.as_mut() else {
            metrics::counter!(METRIC_JOURNAL_ERRORS).increment(1);
            return Err(io::Error::other("no writable journal segment"));
        };
        match file.write_all(line) {
            Ok(()) => {
                if let Some(row) = row {
                    self.recent.keep(tail.next_seq - 1, tail.len, row);
                }
                tail.len += line.len() as u64;
                if let Some((since, _)) = tail.failing.take() {
                    tracing::info!(dir = %self.dir.display(), failing_since = %since, in_memory = self.memory.held(), "usage journal writes work again");
                }
                Ok(())
            }
            Err(err) => {
                metrics::counter!(METRIC_JOURNAL_ERRORS).increment(1);
                // A segment the failed write left unchanged takes the next row as it is (no
                // new file per attempt on a full disk, and writes resume the moment there is
                // room); one that got part of the line is closed for good, and the next row
                // starts a new segment, which then stays open the same way.
                let unchanged = file.metadata().is_ok_and(|meta| meta.len() == tail.len);
                if !unchanged {
                    tail.file = None;
                }
                self.enter_failure(&mut tail, &err);
                Err(err)
            }
        }
    }

    /// Starts a new segment when there is none or the current one is full; `force` also
    /// replaces one that is failing. Tried on every write that needs one, so writes resume as
    /// soon as the disk has room: a failed attempt leaves no file behind, and a new segment a
    /// write then fails on is kept for the next row.
    fn ensure_segment(&self, tail: &mut Tail, force: bool) {
        let full = tail.file.is_none()
            || tail.len >= self.segment_limit
            || (force && tail.failing.is_some());
        if !full {
            return;
        }
        match create_segment(&self.dir, tail.next_seq) {
            Ok(file) => {
                tail.file = Some(file);
                tail.len = 0;
                self.newest.store(tail.next_seq, Ordering::Release);
                tail.next_seq += 1;
            }
            Err(err) => {
                self.enter_failure(tail, &err);
            }
        }
    }

    /// Logs the first of a run of failures, once and loudly; every row they affect is held
    /// in memory or counted as lost by the caller.
    fn enter_failure(&self, tail: &mut Tail, err: &io::Error) {
        if tail.failing.is_none() {
            tail.failing = Some((Utc::now(), err.to_string()));
            tracing::error!(error = %err, dir = %self.dir.display(), memory_rows = self.memory.limit(), "CANNOT WRITE THE USAGE JOURNAL; usage rows are held in memory and inserted into the database directly; a crash now loses them");
        }
    }

    /// Rows that left the backlog without a commit (unreadable lines, lost rows).
    pub(super) fn forget(&self, rows: u64) {
        let _ = self
            .backlog
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(rows))
            });
    }

    /// The row written at `offset` of `segment`, if it is still kept parsed.
    pub(super) fn recent_row(&self, segment: u64, offset: u64) -> Option<UsageEvent> {
        self.recent.take(segment, offset)
    }

    pub(super) fn appended(&self) -> Notified<'_> {
        self.appended.notified()
    }

    pub(super) fn held(&self) -> Notified<'_> {
        self.held.notified()
    }

    pub(super) fn publish_backlog(&self) {
        metrics::gauge!(METRIC_BACKLOG).set(self.backlog() as f64);
    }

    pub(super) fn first_segment(&self) -> u64 {
        self.first
    }

    pub(super) fn newest_segment(&self) -> u64 {
        self.newest.load(Ordering::Acquire)
    }
}

/// A poisoned lock only means another thread panicked mid-append; the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One row as its journal line: JSON and a newline (public for the benchmarks).
pub fn encode(event: &UsageEvent) -> Option<Vec<u8>> {
    match serde_json::to_vec(event) {
        Ok(mut line) => {
            line.push(b'\n');
            Some(line)
        }
        Err(err) => {
            tracing::error!(error = %err, request_id = %event.request_id, "cannot encode a usage row");
            None
        }
    }
}
