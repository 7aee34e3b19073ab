//! Rows the journal could not write, held in memory for the writer up to `[usage] memory_rows`
//! and moved back to disk when it has room. Past the bound `[usage] on_journal_full` decides:
//! keep serving and lose (and count) rows, or refuse new requests until rows leave memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{encode, lock, Journal, METRIC_ROWS_IN_MEMORY, METRIC_ROWS_LOST};
use crate::config::OnJournalFull;
use crate::usage::UsageEvent;

pub(super) struct Memory {
    limit: u64,
    policy: OnJournalFull,
    queue: Mutex<Queue>,
    /// Rows in the queue plus rows the writer took and has not yet committed or saved: what a
    /// `kill -9` would lose now.
    held: AtomicU64,
    lost: AtomicU64,
}

#[derive(Default)]
struct Queue {
    rows: VecDeque<UsageEvent>,
    /// The bound was reached and has not been left since: logged once each way.
    full: bool,
    lost_while_full: u64,
}

impl Memory {
    pub(super) fn new(limit: u64, policy: OnJournalFull) -> Self {
        metrics::gauge!(METRIC_ROWS_IN_MEMORY).set(0.0);
        metrics::counter!(METRIC_ROWS_LOST).increment(0);
        Self {
            limit: limit.max(1),
            policy,
            queue: Mutex::default(),
            held: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// Keeps a row for the writer. False when the bound is reached under the `serve` policy:
    /// the row is then lost, and counted. Under `refuse` a request admitted before the bound
    /// was reached still keeps its row; new requests are turned away (`accepting`).
    pub(super) fn keep(&self, event: &UsageEvent) -> bool {
        let mut queue = lock(&self.queue);
        let at_bound = self.held() >= self.limit;
        let kept = !(at_bound && self.policy == OnJournalFull::Serve);
        if kept {
            queue.rows.push_back(event.clone());
            self.held.fetch_add(1, Ordering::AcqRel);
            self.publish();
        } else {
            queue.lost_while_full += 1;
            self.count_lost(1);
        }
        if self.held() >= self.limit && !queue.full {
            queue.full = true;
            match self.policy {
                OnJournalFull::Serve => tracing::error!(
                    bound = self.limit,
                    "usage rows held in memory reached [usage] memory_rows; further rows are LOST until the journal or the database takes rows (on_journal_full = \"serve\")"
                ),
                OnJournalFull::Refuse => tracing::error!(
                    bound = self.limit,
                    "usage rows held in memory reached [usage] memory_rows; refusing requests with 503 ledger_unavailable until the journal or the database takes rows (on_journal_full = \"refuse\")"
                ),
            }
        }
        kept
    }

    /// Up to `max` rows for the writer, oldest first. They stay counted until `release`.
    pub(super) fn take(&self, max: usize) -> Vec<UsageEvent> {
        let mut queue = lock(&self.queue);
        let n = max.min(queue.rows.len());
        queue.rows.drain(..n).collect()
    }

    /// Returns a taken row to the front of the queue (it could not be saved elsewhere).
    pub(super) fn put_back(&self, row: UsageEvent) {
        lock(&self.queue).rows.push_front(row);
    }

    /// Every row still queued (at stop).
    pub(super) fn take_all(&self) -> Vec<UsageEvent> {
        lock(&self.queue).rows.drain(..).collect()
    }

    /// Rows taken by the writer have left memory: committed, saved to a segment, or lost.
    pub(super) fn release(&self, rows: u64) {
        if rows == 0 {
            return;
        }
        let mut queue = lock(&self.queue);
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(rows))
            });
        self.publish();
        if queue.full && self.held() < self.limit {
            queue.full = false;
            let lost = std::mem::take(&mut queue.lost_while_full);
            tracing::info!(
                held = self.held(),
                lost,
                "usage rows held in memory are below [usage] memory_rows again; rows are kept and requests accepted"
            );
        }
    }

    pub(super) fn count_lost(&self, rows: u64) {
        self.lost.fetch_add(rows, Ordering::AcqRel);
        metrics::counter!(METRIC_ROWS_LOST).increment(rows);
    }

    /// False once the bound is reached under the `refuse` policy.
    pub(super) fn accepting(&self) -> bool {
        self.policy != OnJournalFull::Refuse || self.held() < self.limit
    }

    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    pub(super) fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    pub(super) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Acquire)
    }

    fn publish(&self) {
        metrics::gauge!(METRIC_ROWS_IN_MEMORY).set(self.held() as f64);
    }
}

/// The journal's side of the memory queue: what the writer takes, saves and gives back.
impl Journal {
    /// Up to `max` rows held in memory, oldest first; they count as held until the writer
    /// reports them committed (`record_commit`) or saved (`persist_unwritten`).
    pub(in crate::usage) fn take_overflow(&self, max: usize) -> Vec<UsageEvent> {
        self.memory.take(max)
    }

    /// Writes rows held in memory (taken by the writer) to the journal, in order, once it can
    /// be written again; they then wait on disk like any other row. Returns how many of the
    /// first rows were saved; the rest stay in memory.
    pub(in crate::usage) fn save_from_memory(&self, rows: &[UsageEvent]) -> usize {
        let saved = rows
            .iter()
            .take_while(|row| encode(row).is_some_and(|line| self.write_line(&line, false).is_ok()))
            .count();
        self.memory.release(saved as u64);
        saved
    }

    /// Moves the rows queued in memory to the journal while it takes them: a database outage
    /// that outlasts a full disk then holds rows on disk, not in memory.
    pub(in crate::usage) fn spill_memory(&self) {
        while let Some(row) = self.memory.take(1).pop() {
            if self.save_from_memory(std::slice::from_ref(&row)) == 0 {
                self.memory.put_back(row);
                return;
            }
        }
    }

    /// At writer stop: writes rows that exist only in memory (`taken` by the writer, plus the
    /// queue) to the journal, so the next start replays them; what still cannot be written is
    /// lost, logged and counted.
    pub(in crate::usage) fn persist_unwritten(&self, mut taken: Vec<UsageEvent>) {
        taken.extend(self.memory.take_all());
        let total = taken.len();
        for (done, row) in taken.iter().enumerate() {
            let written = encode(row).is_some_and(|line| self.write_line(&line, done == 0).is_ok());
            if !written {
                let lost = (total - done) as u64;
                tracing::error!(
                    lost,
                    "usage rows held in memory could not be saved to the journal at stop"
                );
                self.memory.count_lost(lost);
                self.memory.release(total as u64);
                self.forget(lost);
                return;
            }
        }
        self.memory.release(total as u64);
    }
}

impl Drop for Journal {
    /// Rows still held only in memory die with the journal (a writer that never ran or did
    /// not finish): said and counted, never silent.
    fn drop(&mut self) {
        let held = self.memory.held();
        if held > 0 {
            tracing::error!(
                lost = held,
                "usage rows held only in memory are lost with the journal"
            );
            self.memory.count_lost(held);
        }
    }
}
