//! The usage writer: tails the journal's segments in order, inserts their rows into the
//! database in batches until each batch is in, and deletes segments whose rows are committed.
//! Normal running, replay after a crash and catching up after an outage are this one loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use super::journal::{Journal, METRIC_JOURNAL_ERRORS};
use super::reader::SegmentReader;
use super::{UsageEvent, UsageSink};

#[cfg(test)]
mod tests;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// A batch is inserted as soon as it has this many rows.
    pub batch_size: usize,
    /// ... or when its oldest row has waited this long.
    pub flush_interval: Duration,
    /// How long a stopping writer keeps trying to drain.
    pub drain_timeout: Duration,
}

/// Runs until `stop` fires, then drains what the journal holds (within `drain_timeout`) and
/// returns. Rows it could not write stay in the journal for the next start. Spawn it with the
/// crate's TaskTracker; run one writer per `Journal`.
pub async fn run_writer<S: UsageSink>(
    journal: Arc<Journal>,
    sink: S,
    settings: WriterSettings,
    stop: CancellationToken,
) {
    let reader = SegmentReader::new(&journal);
    let mut writer = Writer {
        journal,
        sink,
        settings,
        stop,
        reader,
        batch: Vec::new(),
        in_memory: Vec::new(),
        oldest: None,
        deadline: None,
        read_failing: false,
    };
    writer.run().await;
    writer.finish();
}

struct Writer<S> {
    journal: Arc<Journal>,
    sink: S,
    settings: WriterSettings,
    stop: CancellationToken,
    reader: SegmentReader,
    /// The rows being inserted. While inserts fail nothing more is read, so an outage holds
    /// rows on disk, not in memory.
    batch: Vec<UsageEvent>,
    /// Parallel to `batch`: rows from the journal's memory queue rather than a segment file;
    /// a batch with any is inserted at once.
    in_memory: Vec<bool>,
    /// When the batch's first row was read.
    oldest: Option<Instant>,
    /// Set when `stop` fires: the writer gives up draining at this instant.
    deadline: Option<Instant>,
    read_failing: bool,
}

impl<S: UsageSink> Writer<S> {
    async fn run(&mut self) {
        loop {
            self.note_stop();
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return;
            }
            self.fill().await;
            self.journal.publish_backlog();
            if self.batch.is_empty() {
                self.reader.delete_finished();
            }
            if self.flush_due() {
                if !self.commit().await {
                    return;
                }
            } else if self.deadline.is_some() {
                return;
            } else {
                self.wait().await;
            }
        }
    }

    fn note_stop(&mut self) {
        if self.deadline.is_none() && self.stop.is_cancelled() {
            self.deadline = Some(Instant::now() + self.settings.drain_timeout);
        }
    }

    /// Fills the batch: first rows held only in memory (at risk until inserted), then rows
    /// from the segments, until it is full or the journal has no more.
    /// Reading and parsing a whole batch takes milliseconds; the writer steps aside every
    /// `YIELD_EVERY` rows so requests on the same runtime thread are not held up behind it.
    async fn fill(&mut self) {
        const YIELD_EVERY: usize = 32;
        let want = self.settings.batch_size.max(1);
        for row in self
            .journal
            .take_overflow(want - self.batch.len().min(want))
        {
            self.push(row, true);
        }
        while self.batch.len() < want {
            match self.reader.next_row(&self.journal) {
                Ok(Some(row)) => {
                    self.push(row, false);
                    if self.batch.len().is_multiple_of(YIELD_EVERY) {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    metrics::counter!(METRIC_JOURNAL_ERRORS).increment(1);
                    if !self.read_failing {
                        self.read_failing = true;
                        tracing::error!(error = %err, "cannot read the usage journal; retrying");
                    }
                    return;
                }
            }
        }
        if self.read_failing {
            self.read_failing = false;
            tracing::info!("usage journal reads work again");
        }
    }

    fn push(&mut self, row: UsageEvent, in_memory: bool) {
        self.oldest.get_or_insert_with(Instant::now);
        self.batch.push(row);
        self.in_memory.push(in_memory);
    }

    fn flush_due(&self) -> bool {
        let Some(oldest) = self.oldest else {
            return false;
        };
        // A row held only in memory goes to the database at once: a crash would lose it.
        self.batch.len() >= self.settings.batch_size
            || self.in_memory.contains(&true)
            || oldest.elapsed() >= self.settings.flush_interval
            || self.deadline.is_some()
    }

    /// Waits for an append, the batch's flush time, a read retry, or `stop`.
    async fn wait(&self) {
        let flush_at = self
            .oldest
            .map(|oldest| oldest + self.settings.flush_interval);
        let retry_at = self.read_failing.then(|| Instant::now() + MAX_BACKOFF);
        let flush_at = flush_at.into_iter().chain(retry_at).min();
        tokio::select! {
            () = self.journal.appended(), if self.batch.is_empty() => {}
            () = self.journal.held() => {}
            () = sleep_until_some(flush_at) => {}
            () = self.stop.cancelled() => {}
        }
    }

    /// Inserts the batch, retrying with backoff until it is in. Returns false when a stopping
    /// writer runs out of time; the batch then stays in the journal.
    async fn commit(&mut self) -> bool {
        let mut delay = FIRST_BACKOFF;
        loop {
            let drain = self.settings.drain_timeout;
            let result = insert_once(
                &self.sink,
                &self.batch,
                &self.stop,
                &mut self.deadline,
                drain,
            )
            .await;
            match result {
                Ok(inserted) => {
                    self.committed(inserted);
                    return true;
                }
                Err(err) if err.refused => {
                    if let Some(inserted) = self.insert_one_by_one().await {
                        self.committed(inserted);
                        return true;
                    }
                }
                Err(err) => {
                    if self.journal.record_failure(&err.message) {
                        tracing::warn!(error = %err.message, rows = self.batch.len(), "usage inserts failing; rows stay in the journal and are retried");
                    }
                    if self.spill_memory_rows() {
                        return true;
                    }
                }
            }
            // Rows keep arriving while inserts fail: the gauge follows them during an outage.
            self.journal.publish_backlog();
            let wake = Instant::now() + delay;
            if self.deadline.is_some_and(|deadline| wake >= deadline) {
                tracing::warn!(
                    backlog = self.journal.backlog(),
                    "usage writer stopping with rows not written; the next start writes them"
                );
                return false;
            }
            self.pause_until(wake).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// The database refused the batch for its content: finds the rows it refuses by inserting
    /// them one at a time, and sets those aside. `None` when the database stops answering
    /// meanwhile (the batch is then retried whole).
    async fn insert_one_by_one(&mut self) -> Option<u64> {
        let mut inserted = 0;
        for row in &self.batch {
            let drain = self.settings.drain_timeout;
            let single = std::slice::from_ref(row);
            match insert_once(&self.sink, single, &self.stop, &mut self.deadline, drain).await {
                Ok(count) => inserted += count,
                Err(err) if err.refused => self.journal.reject(row, &err.message),
                Err(err) => {
                    self.journal.record_failure(&err.message);
                    return None;
                }
            }
        }
        Some(inserted)
    }

    /// While inserts fail, rows held only in memory go to the journal if it takes them again
    /// (the disk has room): from the batch, then from the queue. Returns true when that left
    /// the batch empty (nothing to insert now).
    fn spill_memory_rows(&mut self) -> bool {
        if self.in_memory.contains(&true) {
            let (memory, disk): (Vec<_>, Vec<_>) = std::mem::take(&mut self.batch)
                .into_iter()
                .zip(std::mem::take(&mut self.in_memory))
                .partition(|(_, in_memory)| *in_memory);
            let memory: Vec<UsageEvent> = memory.into_iter().map(|(row, _)| row).collect();
            let saved = self.journal.save_from_memory(&memory);
            let kept = memory.into_iter().skip(saved).map(|row| (row, true));
            (self.batch, self.in_memory) = disk.into_iter().chain(kept).unzip();
        }
        self.journal.spill_memory();
        if self.batch.is_empty() {
            self.oldest = None;
        }
        self.batch.is_empty()
    }

    fn committed(&mut self, inserted: u64) {
        let from_memory = self.in_memory.iter().filter(|m| **m).count() as u64;
        let rows = self.batch.len() as u64;
        if let Some(since) = self.journal.record_commit(rows, inserted, from_memory) {
            tracing::info!(failing_since = %since, "usage inserts work again");
        }
        self.batch.clear();
        self.in_memory.clear();
        self.oldest = None;
        self.reader.delete_finished();
    }

    /// Sleeps until `wake`, cut short by the drain deadline once `stop` fires.
    async fn pause_until(&mut self, wake: Instant) {
        if self.deadline.is_none() {
            let stopped = tokio::select! {
                () = sleep_until(wake) => false,
                () = self.stop.cancelled() => true,
            };
            if !stopped {
                return;
            }
            self.note_stop();
        }
        sleep_until(self.deadline.map_or(wake, |deadline| deadline.min(wake))).await;
    }

    /// Rows that exist only in memory go back to the journal for the next start.
    fn finish(self) {
        let unwritten: Vec<UsageEvent> = self
            .batch
            .into_iter()
            .zip(self.in_memory)
            .filter_map(|(row, in_memory)| in_memory.then_some(row))
            .collect();
        self.journal.persist_unwritten(unwritten);
        self.journal.publish_backlog();
    }
}

/// One insert attempt. Once `stop` fires it is bounded by the drain deadline (a database that
/// hangs must not hold up shutdown); an insert cut off that way may still have committed,
/// which the retry on the next start absorbs, since inserts ignore known request_ids.
async fn insert_once<S: UsageSink>(
    sink: &S,
    batch: &[UsageEvent],
    stop: &CancellationToken,
    deadline: &mut Option<Instant>,
    drain: Duration,
) -> Result<u64, InsertError> {
    let insert = sink.insert_usage(batch);
    tokio::pin!(insert);
    let until = match *deadline {
        Some(until) => until,
        None => {
            tokio::select! {
                result = &mut insert => return result.map_err(InsertError::from),
                () = stop.cancelled() => {}
            }
            *deadline.insert(Instant::now() + drain)
        }
    };
    match timeout_at(until, insert).await {
        Ok(result) => result.map_err(InsertError::from),
        Err(_) => Err(InsertError {
            message: "insert still running at the drain deadline".to_owned(),
            refused: false,
        }),
    }
}

struct InsertError {
    message: String,
    /// The database answered and refused the statement (a constraint, a value out of range):
    /// retrying the same rows cannot help. Otherwise it did not answer, and retrying will.
    refused: bool,
}

impl From<sqlx::Error> for InsertError {
    fn from(error: sqlx::Error) -> Self {
        Self {
            refused: matches!(error, sqlx::Error::Database(_)),
            message: error.to_string(),
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
