#![expect(
    clippy::disallowed_methods,
    reason = "each test awaits or aborts the tasks it spawns"
)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::task::JoinHandle;

use std::fs;

use super::*;
use crate::config::OnJournalFull;
use crate::usage::journal::tests::{bounded, event, line, unwritable};
use crate::usage::journal::{list_segments, segment_path};

/// The database, in memory: ignores request_ids it has, and can be told to fail.
#[derive(Clone, Default)]
struct FakeSink(Arc<FakeState>);

#[derive(Default)]
struct FakeState {
    rows: Mutex<Vec<UsageEvent>>,
    fail: AtomicBool,
    /// The request_ids of every batch offered, failed or not.
    attempts: Mutex<Vec<Vec<String>>>,
}

impl UsageSink for FakeSink {
    async fn insert_usage(&self, events: &[UsageEvent]) -> Result<u64, sqlx::Error> {
        let ids = events.iter().map(|row| row.request_id.clone()).collect();
        self.0.attempts.lock().unwrap().push(ids);
        if self.0.fail.load(Ordering::SeqCst) {
            return Err(sqlx::Error::PoolTimedOut);
        }
        let mut rows = self.0.rows.lock().unwrap();
        let known: HashSet<String> = rows.iter().map(|row| row.request_id.clone()).collect();
        let fresh: Vec<UsageEvent> = events
            .iter()
            .filter(|row| !known.contains(&row.request_id))
            .cloned()
            .collect();
        rows.extend(fresh.iter().cloned());
        Ok(fresh.len() as u64)
    }
}

impl FakeSink {
    fn ids(&self) -> Vec<String> {
        let rows = self.0.rows.lock().unwrap();
        rows.iter().map(|row| row.request_id.clone()).collect()
    }

    fn set_failing(&self, fail: bool) {
        self.0.fail.store(fail, Ordering::SeqCst);
    }

    /// Rows offered in all attempts: equal to the rows stored when nothing was sent twice.
    fn offered(&self) -> usize {
        self.0.attempts.lock().unwrap().iter().map(Vec::len).sum()
    }
}

struct Running {
    journal: Arc<Journal>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) -> Arc<Journal> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .expect("the writer stops")
            .unwrap();
        self.journal
    }
}

fn settings(batch_size: usize, flush_ms: u64) -> WriterSettings {
    WriterSettings {
        batch_size,
        flush_interval: Duration::from_millis(flush_ms),
        drain_timeout: Duration::from_millis(500),
    }
}

fn start(journal: Arc<Journal>, sink: &FakeSink, settings: WriterSettings) -> Running {
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_writer(
        Arc::clone(&journal),
        sink.clone(),
        settings,
        stop.clone(),
    ));
    Running {
        journal,
        stop,
        task,
    }
}

fn open(dir: &Path) -> Arc<Journal> {
    Arc::new(Journal::open(dir).unwrap())
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

fn append_all(journal: &Journal, ids: &[String]) {
    for id in ids {
        journal.append(&event(id));
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn rows_arrive_in_order_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    let running = start(open(dir.path()), &sink, settings(10, 20));
    let expected = ids("row", 95);
    append_all(&running.journal, &expected);
    wait_until("all rows arrive", || sink.ids().len() == 95).await;
    let journal = running.stop().await;
    assert_eq!(sink.ids(), expected);
    assert_eq!(sink.offered(), 95, "no row was sent twice");
    let health = journal.health();
    assert_eq!((health.backlog, health.rows_written), (0, 95));
    assert_eq!(health.failing_since, None);
}

#[tokio::test]
async fn a_full_batch_flushes_at_once_and_a_short_one_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    let running = start(open(dir.path()), &sink, settings(5, 300));
    let began = Instant::now();
    append_all(&running.journal, &ids("full", 5));
    wait_until("the full batch arrives", || sink.ids().len() == 5).await;
    assert!(
        began.elapsed() < Duration::from_millis(250),
        "flushed by size"
    );

    let began = Instant::now();
    append_all(&running.journal, &ids("short", 2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.ids().len(), 5, "two rows wait for the interval");
    wait_until("the short batch arrives", || sink.ids().len() == 7).await;
    assert!(began.elapsed() >= Duration::from_millis(300));
    running.stop().await;
    assert_eq!(sink.0.attempts.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failing_database_keeps_rows_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    sink.set_failing(true);
    let running = start(open(dir.path()), &sink, settings(10, 10));
    let expected = ids("row", 25);
    append_all(&running.journal, &expected);
    wait_until("two failed attempts", || {
        sink.0.attempts.lock().unwrap().len() >= 2
    })
    .await;
    let health = running.journal.health();
    assert!(health.failing_since.is_some());
    assert!(health.last_error.is_some());
    assert_eq!(health.backlog, 25);
    {
        let attempts = sink.0.attempts.lock().unwrap();
        assert!(
            attempts.iter().all(|batch| *batch == expected[..10]),
            "the same batch is retried and nothing further is read"
        );
    }

    sink.set_failing(false);
    wait_until("all rows arrive", || sink.ids().len() == 25).await;
    let journal = running.stop().await;
    assert_eq!(sink.ids(), expected);
    assert_eq!(journal.health().failing_since, None);
    assert_eq!(journal.backlog(), 0);
}

#[tokio::test]
async fn committed_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    let journal = Arc::new(Journal::open_with_limit(dir.path(), 2000).unwrap());
    let running = start(journal, &sink, settings(7, 10));
    append_all(&running.journal, &ids("row", 60));
    assert!(list_segments(dir.path()).unwrap().len() > 5);
    wait_until("all rows arrive", || sink.ids().len() == 60).await;
    wait_until("committed segments are gone", || {
        list_segments(dir.path()).unwrap().len() == 1
    })
    .await;
    running.stop().await;
    assert_eq!(sink.ids(), ids("row", 60));
}

#[tokio::test]
async fn rows_left_by_an_earlier_process_are_replayed_once() {
    let dir = tempfile::tempdir().unwrap();
    let by_hand = format!(
        "{}{}not json\n{}{{\"request_id\":\"cut-off",
        line("old-0"),
        line("old-1"),
        line("old-2")
    );
    fs::write(segment_path(dir.path(), 3), by_hand).unwrap();
    let earlier = open(dir.path());
    append_all(&earlier, &ids("row", 5));
    drop(earlier);

    let sink = FakeSink::default();
    sink.insert_usage(&[event("old-1")]).await.unwrap();
    let journal = open(dir.path());
    assert_eq!(journal.backlog(), 9, "4 full lines by hand, 5 appended");
    let running = start(journal, &sink, settings(4, 10));
    wait_until("the backlog is written", || running.journal.backlog() == 0).await;
    let journal = running.stop().await;
    let mut expected = vec!["old-1", "old-0", "old-2"];
    let rows = ids("row", 5);
    expected.extend(rows.iter().map(String::as_str));
    assert_eq!(sink.ids(), expected);
    assert_eq!(journal.health().rows_written, 7);
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    let running = start(open(dir.path()), &sink, settings(7, 5));
    let expected = ids("row", 300);
    append_all(&running.journal, &expected[..150]);
    wait_until("some rows arrive", || !sink.ids().is_empty()).await;
    append_all(&running.journal, &expected[150..]);
    running.task.abort();
    let _ = running.task.await;
    drop(running.journal);

    let running = start(open(dir.path()), &sink, settings(7, 5));
    wait_until("all rows arrive", || sink.ids().len() == 300).await;
    running.stop().await;
    assert_eq!(sink.ids(), expected);
}

#[tokio::test]
async fn stop_drains_everything() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    let running = start(open(dir.path()), &sink, settings(20, 60_000));
    append_all(&running.journal, &ids("row", 50));
    let journal = running.stop().await;
    assert_eq!(sink.ids(), ids("row", 50));
    assert_eq!(journal.backlog(), 0);
}

#[tokio::test]
async fn rows_not_written_by_stop_wait_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    sink.set_failing(true);
    let mut failing = settings(10, 60_000);
    failing.drain_timeout = Duration::from_millis(250);
    let running = start(open(dir.path()), &sink, failing);
    append_all(&running.journal, &ids("row", 5));
    running.journal.break_tail();
    append_all(&running.journal, &ids("memory", 2));
    let began = Instant::now();
    drop(running.stop().await);
    assert!(began.elapsed() < Duration::from_secs(1));
    assert!(sink.ids().is_empty());

    sink.set_failing(false);
    let journal = open(dir.path());
    assert_eq!(journal.backlog(), 7, "the rows held in memory were saved");
    let running = start(journal, &sink, settings(10, 10));
    wait_until("all rows arrive", || sink.ids().len() == 7).await;
    running.stop().await;
    let mut expected = ids("row", 5);
    expected.extend(ids("memory", 2));
    assert_eq!(sink.ids(), expected);
}

#[tokio::test]
async fn rows_the_journal_could_not_take_still_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    let running = start(open(dir.path()), &sink, settings(10, 10));
    running.journal.break_tail();
    append_all(&running.journal, &ids("row", 3));
    wait_until("all rows arrive", || sink.ids().len() == 3).await;
    assert_eq!(running.stop().await.backlog(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_all_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FakeSink::default();
    // Small segments, so the writer crosses rotations while appends race it.
    let journal = Arc::new(Journal::open_with_limit(dir.path(), 64 * 1024).unwrap());
    let running = start(journal, &sink, settings(100, 10));
    let appenders: Vec<_> = (0..8)
        .map(|task| {
            let journal = Arc::clone(&running.journal);
            tokio::spawn(async move {
                for i in 0..500 {
                    journal.append(&event(&format!("t{task}-{i:04}")));
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.await.unwrap();
    }
    wait_until("all rows arrive", || sink.ids().len() == 4000).await;
    running.stop().await;
    let stored = sink.ids();
    assert_eq!(stored.iter().collect::<HashSet<_>>().len(), 4000);
    assert_eq!(sink.offered(), 4000, "no row was sent twice");
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    for task in 0..8 {
        let prefix = format!("t{task}-");
        let own: Vec<&String> = stored.iter().filter(|id| id.starts_with(&prefix)).collect();
        assert!(
            own.windows(2).all(|pair| pair[0] < pair[1]),
            "task {task} kept its order"
        );
    }
}

#[tokio::test]
async fn rows_held_in_memory_go_to_the_database_at_once() {
    let (_disk, journal) = unwritable(&bounded(100, OnJournalFull::Serve));
    let sink = FakeSink::default();
    let running = start(Arc::new(journal), &sink, settings(100, 60_000));
    append_all(&running.journal, &ids("row", 3));
    wait_until(
        "the rows arrive without waiting for the flush interval",
        || sink.ids().len() == 3,
    )
    .await;
    let health = running.journal.health();
    assert_eq!((health.rows_in_memory, health.backlog), (0, 0));
    assert!(health.journal_failing_since.is_some());
    running.stop().await;
}

#[tokio::test]
async fn with_the_database_down_too_memory_holds_at_most_the_bound_and_losses_are_counted() {
    let (disk, journal) = unwritable(&bounded(5, OnJournalFull::Serve));
    let sink = FakeSink::default();
    sink.set_failing(true);
    let mut failing = settings(2, 10);
    failing.drain_timeout = Duration::from_millis(100);
    let running = start(Arc::new(journal), &sink, failing);
    append_all(&running.journal, &ids("row", 8));
    wait_until("an insert was tried", || {
        !sink.0.attempts.lock().unwrap().is_empty()
    })
    .await;
    let health = running.journal.health();
    assert_eq!((health.rows_in_memory, health.rows_lost), (5, 3));
    let journal = running.stop().await;
    let health = journal.health();
    assert_eq!(health.rows_in_memory, 0);
    if disk.is_some() {
        assert_eq!(
            health.rows_lost, 8,
            "at stop the full disk takes none of the 5"
        );
    } else {
        assert_eq!(
            health.rows_lost, 3,
            "/dev/full lets the stop open a new segment"
        );
    }
    drop(journal);
}

#[tokio::test]
async fn rows_held_in_memory_move_to_the_journal_once_it_has_room_while_the_database_is_down() {
    let (Some(disk), journal) = unwritable(&bounded(100, OnJournalFull::Serve)) else {
        return;
    };
    let sink = FakeSink::default();
    sink.set_failing(true);
    let running = start(Arc::new(journal), &sink, settings(2, 10));
    append_all(&running.journal, &ids("row", 5));
    wait_until("an insert was tried", || {
        !sink.0.attempts.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(running.journal.health().rows_in_memory, 5);
    disk.free();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.journal.health().rows_in_memory > 0 {
        assert!(Instant::now() < deadline, "rows stayed in memory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(running.journal.backlog(), 5, "they wait on disk now");
    sink.set_failing(false);
    wait_until("all rows arrive", || sink.ids().len() == 5).await;
    let journal = running.stop().await;
    let mut stored = sink.ids();
    stored.sort();
    assert_eq!(stored, ids("row", 5));
    assert_eq!(journal.health().rows_lost, 0);
    drop(journal);
}
