//! The usage journal: rows appended as JSON lines to local segment files, the queue between the
//! request path and the database writer. Owns the directory, its lock, the segment files, the
//! backlog count and the ledger's health; it never touches the database.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::UsageEvent;

#[cfg(test)]
pub(super) mod tests;

/// A segment that has passed this size is closed and a new one started, so the writer can
/// delete committed rows a segment at a time.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Rows kept in memory while the journal cannot be written; past this they are lost.
const OVERFLOW_CAP: usize = 100_000;
/// After a failed write, how long appends go to memory before a new segment is tried, so a
/// full disk does not get a new (empty) segment file per request.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

pub(super) const METRIC_BACKLOG: &str = "glm_gateway_ledger_backlog";
pub(super) const METRIC_ROWS_WRITTEN: &str = "glm_gateway_ledger_rows_written_total";
pub(super) const METRIC_WRITE_ERRORS: &str = "glm_gateway_ledger_write_errors_total";
pub(super) const METRIC_JOURNAL_ERRORS: &str = "glm_gateway_ledger_journal_errors_total";
pub(super) const METRIC_ROWS_LOST: &str = "glm_gateway_ledger_rows_lost_total";
pub(super) const METRIC_ROWS_REJECTED: &str = "glm_gateway_ledger_rows_rejected_total";
/// Rows the database refused, one JSON object a line: `{"reason", "row"}`.
pub const REJECTED_FILE: &str = "rejected.jsonl";

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
}

/// An append-only journal of usage rows in `dir/segment-<20-digit sequence>.jsonl` files.
pub struct Journal {
    dir: PathBuf,
    segment_limit: u64,
    /// Held for the journal's life; the OS releases it however the process ends.
    _lock: File,
    tail: Mutex<Tail>,
    /// Sequence of the newest segment. It is raised only after the last write to the previous
    /// segment, so a reader that sees it above its own segment knows that segment is complete.
    newest: AtomicU64,
    /// The oldest segment present at open: where the writer starts reading.
    first: u64,
    overflow: Mutex<Overflow>,
    /// Raised before a row is written and lowered once it is committed (or lost), so it never
    /// dips below the true count while a fast writer commits a row its appender has not counted.
    backlog: AtomicU64,
    notify: Notify,
    health: Mutex<Health>,
}

/// The segment being appended to.
struct Tail {
    /// `None` after a failed write: the file may end in a partial line, so no row may follow it.
    file: Option<File>,
    len: u64,
    next_seq: u64,
    retry_at: Instant,
    failing: bool,
}

#[derive(Default)]
struct Overflow {
    rows: VecDeque<UsageEvent>,
    /// Rows lost since the queue last had room; reported when it has room again.
    dropping: u64,
}

#[derive(Default)]
struct Health {
    failing_since: Option<DateTime<Utc>>,
    last_error: Option<String>,
    rows_written: u64,
}

impl Journal {
    /// Opens (creating) `dir`, takes an exclusive lock on `dir/LOCK` (a second process on the
    /// same dir gets an error naming the dir), and starts a new segment after any left by an
    /// earlier process, which are read first.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        Self::open_with_limit(dir, SEGMENT_BYTES)
    }

    pub(super) fn open_with_limit(dir: &Path, segment_limit: u64) -> io::Result<Journal> {
        let named = |err| naming(dir, err);
        fs::create_dir_all(dir).map_err(named)?;
        let lock = lock_dir(dir)?;
        let existing = list_segments(dir).map_err(named)?;
        let mut backlog = 0;
        for seq in &existing {
            backlog += count_lines(&segment_path(dir, *seq)).map_err(named)?;
        }
        let seq = existing.last().map_or(1, |last| last + 1);
        let file = create_segment(dir, seq).map_err(named)?;
        if backlog > 0 {
            tracing::info!(rows = backlog, segments = existing.len(), dir = %dir.display(), "usage journal holds rows from an earlier run; the writer replays them");
        }
        metrics::gauge!(METRIC_BACKLOG).set(backlog as f64);
        Ok(Journal {
            dir: dir.to_path_buf(),
            segment_limit,
            _lock: lock,
            tail: Mutex::new(Tail {
                file: Some(file),
                len: 0,
                next_seq: seq + 1,
                retry_at: Instant::now(),
                failing: false,
            }),
            newest: AtomicU64::new(seq),
            first: existing.first().copied().unwrap_or(seq),
            overflow: Mutex::new(Overflow::default()),
            backlog: AtomicU64::new(backlog),
            notify: Notify::new(),
            health: Mutex::new(Health::default()),
        })
    }

    /// Appends one row as one JSON line and wakes the writer. Never fails the caller: a row the
    /// journal cannot take is kept in memory for the writer (up to `OVERFLOW_CAP`), else lost,
    /// logged and counted.
    pub fn append(&self, event: &UsageEvent) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let written = encode(event).is_some_and(|line| self.write_line(&line, false).is_ok());
        if written || self.keep_in_memory(event) {
            self.notify.notify_one();
        } else {
            self.forget(1);
        }
    }

    /// Rows appended (or found in old segments at open) and not yet committed.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Acquire)
    }

    pub fn health(&self) -> LedgerHealth {
        let health = lock(&self.health);
        LedgerHealth {
            backlog: self.backlog(),
            failing_since: health.failing_since,
            last_error: health.last_error.clone(),
            rows_written: health.rows_written,
        }
    }

    /// One `write` of a whole line, under the tail lock so lines never interleave.
    fn write_line(&self, line: &[u8], force_reopen: bool) -> io::Result<()> {
        let mut tail = lock(&self.tail);
        self.ensure_segment(&mut tail, force_reopen);
        let Some(file) = tail.file.as_mut() else {
            metrics::counter!(METRIC_JOURNAL_ERRORS).increment(1);
            return Err(io::Error::other("no writable journal segment"));
        };
        match file.write_all(line) {
            Ok(()) => {
                tail.len += line.len() as u64;
                if tail.failing {
                    tail.failing = false;
                    tracing::info!(dir = %self.dir.display(), "usage journal writes work again");
                }
                Ok(())
            }
            Err(err) => {
                metrics::counter!(METRIC_JOURNAL_ERRORS).increment(1);
                tail.file = None;
                tail.retry_at = Instant::now() + REOPEN_DELAY;
                self.log_failure(
                    &mut tail,
                    &err,
                    "usage journal write failed; keeping rows in memory",
                );
                Err(err)
            }
        }
    }

    /// Starts a new segment when there is none or the current one is full.
    fn ensure_segment(&self, tail: &mut Tail, force: bool) {
        let full = tail.file.is_none() || tail.len >= self.segment_limit;
        if !full || (!force && Instant::now() < tail.retry_at) {
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
                tail.retry_at = Instant::now() + REOPEN_DELAY;
                self.log_failure(tail, &err, "cannot start a usage journal segment");
            }
        }
    }

    /// Logs the first of a run of failures; every row they affect is counted by the caller.
    fn log_failure(&self, tail: &mut Tail, err: &io::Error, message: &str) {
        if !tail.failing {
            tail.failing = true;
            tracing::error!(error = %err, dir = %self.dir.display(), "{message}");
        }
    }

    fn keep_in_memory(&self, event: &UsageEvent) -> bool {
        let mut overflow = lock(&self.overflow);
        if overflow.rows.len() >= OVERFLOW_CAP {
            if overflow.dropping == 0 {
                tracing::error!(
                    cap = OVERFLOW_CAP,
                    "usage journal unwritable and its memory queue full; losing usage rows"
                );
            }
            overflow.dropping += 1;
            metrics::counter!(METRIC_ROWS_LOST).increment(1);
            return false;
        }
        if overflow.dropping > 0 {
            tracing::error!(
                lost = overflow.dropping,
                "usage memory queue has room again"
            );
            overflow.dropping = 0;
        }
        overflow.rows.push_back(event.clone());
        true
    }

    /// Up to `max` rows from the memory queue, oldest first.
    pub(super) fn take_overflow(&self, max: usize) -> Vec<UsageEvent> {
        let mut overflow = lock(&self.overflow);
        let n = max.min(overflow.rows.len());
        overflow.rows.drain(..n).collect()
    }

    /// At writer stop: writes rows that exist only in memory to the journal, so the next start
    /// replays them; what still cannot be written is lost, logged and counted.
    pub(super) fn persist_unwritten(&self, mut rows: Vec<UsageEvent>) {
        rows.extend(lock(&self.overflow).rows.drain(..));
        let total = rows.len();
        for (done, row) in rows.iter().enumerate() {
            let written = encode(row).is_some_and(|line| self.write_line(&line, done == 0).is_ok());
            if !written {
                let lost = (total - done) as u64;
                tracing::error!(
                    lost,
                    "usage rows held in memory could not be saved to the journal at stop"
                );
                metrics::counter!(METRIC_ROWS_LOST).increment(lost);
                self.forget(lost);
                return;
            }
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

    pub(super) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    pub(super) fn publish_backlog(&self) {
        metrics::gauge!(METRIC_BACKLOG).set(self.backlog() as f64);
    }

    /// A batch of `rows` committed, `inserted` of them new to the database. Returns when
    /// failing started if this ends a failure.
    pub(super) fn record_commit(&self, rows: u64, inserted: u64) -> Option<DateTime<Utc>> {
        self.forget(rows);
        self.publish_backlog();
        metrics::counter!(METRIC_ROWS_WRITTEN).increment(inserted);
        let mut health = lock(&self.health);
        health.rows_written += inserted;
        health.failing_since.take()
    }

    /// An insert failed. Returns true when this starts a failure.
    pub(super) fn record_failure(&self, error: &str) -> bool {
        metrics::counter!(METRIC_WRITE_ERRORS).increment(1);
        let mut health = lock(&self.health);
        health.last_error = Some(error.to_owned());
        let starts = health.failing_since.is_none();
        if starts {
            health.failing_since = Some(Utc::now());
        }
        starts
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets aside a row the database refuses for what it is (not for being unreachable), so
    /// that it cannot hold up the rows behind it: it goes to `rejected.jsonl` beside the
    /// segments, with the reason, for an operator to look at and load by hand.
    pub(super) fn reject(&self, row: &UsageEvent, reason: &str) {
        metrics::counter!(METRIC_ROWS_REJECTED).increment(1);
        tracing::error!(request_id = %row.request_id, %reason, "the database refuses a usage row; set aside in rejected.jsonl");
        let line = serde_json::json!({ "reason": reason, "row": row });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(REJECTED_FILE))
            .and_then(|mut file| file.write_all(&bytes));
        if let Err(error) = written {
            metrics::counter!(METRIC_ROWS_LOST).increment(1);
            tracing::error!(request_id = %row.request_id, %error, "a refused usage row could not be set aside and is lost");
        }
    }

    pub(super) fn first_segment(&self) -> u64 {
        self.first
    }

    pub(super) fn newest_segment(&self) -> u64 {
        self.newest.load(Ordering::Acquire)
    }
}

/// Journal errors name the directory: the operator's first question.
fn naming(dir: &Path, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!("usage journal {}: {err}", dir.display()),
    )
}

/// A poisoned lock only means another thread panicked mid-append; the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn encode(event: &UsageEvent) -> Option<Vec<u8>> {
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

fn lock_dir(dir: &Path) -> io::Result<File> {
    let path = dir.join("LOCK");
    let open = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path);
    let file = open.map_err(|err| naming(dir, err))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(naming(
            dir,
            io::Error::new(io::ErrorKind::WouldBlock, "in use by another process"),
        )),
        Err(TryLockError::Error(err)) => Err(naming(dir, err)),
    }
}

pub(super) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("segment-{seq:020}.jsonl"))
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(segment_path(dir, seq))
}

/// Sequences of the segment files in `dir`, ascending; other files are ignored.
pub(super) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let seq = name
            .to_str()
            .and_then(|name| name.strip_prefix("segment-")?.strip_suffix(".jsonl"))
            .filter(|digits| digits.len() == 20)
            .and_then(|digits| digits.parse::<u64>().ok());
        seqs.extend(seq);
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Complete (newline-terminated) lines in a segment: the rows it holds for the backlog.
fn count_lines(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += chunk[..n].iter().filter(|b| **b == b'\n').count() as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
