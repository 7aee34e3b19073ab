use std::fs::{self, File, OpenOptions};
use std::io::Write;

use chrono::TimeZone;

use super::*;
use crate::usage::UsageSource;

/// A row whose `request_id` is `id`.
pub(crate) fn event(id: &str) -> UsageEvent {
    UsageEvent {
        request_id: id.to_owned(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        api_key_id: "key-1".to_owned(),
        team: "search".to_owned(),
        endpoint: "/v1/chat/completions".to_owned(),
        requested_model: Some("gpt-4o".to_owned()),
        upstream_model: Some("glm-4.5".to_owned()),
        streamed: true,
        status_code: 200,
        error_code: None,
        prompt_tokens: 12,
        completion_tokens: 34,
        total_tokens: 46,
        cached_tokens: 0,
        image_count: 0,
        latency_ms: 321,
        usage_source: UsageSource::Upstream,
        client_disconnected: false,
        cost: Some("0.0012".parse().unwrap()),
        emulated: None,
        prompt_text: None,
        completion_text: None,
    }
}

/// A JSON line for a segment written by hand.
pub(crate) fn line(id: &str) -> String {
    format!("{}\n", serde_json::to_string(&event(id)).unwrap())
}

impl Journal {
    /// Makes writes fail as on a full disk, until a new segment is forced (at stop).
    pub(crate) fn break_tail(&self) {
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut tail = lock(&self.tail);
        tail.file = Some(full);
        // What `/dev/full` reports as its length: a failed write leaves it unchanged.
        tail.len = 0;
    }
}

fn read_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for seq in list_segments(dir).unwrap() {
        let text = fs::read_to_string(segment_path(dir, seq)).unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

#[test]
fn a_second_open_on_a_locked_dir_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let Err(err) = Journal::open(dir.path()) else {
        panic!("a second open of a locked journal succeeded");
    };
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    drop(journal);
    Journal::open(dir.path()).unwrap();
}

#[test]
fn each_append_is_one_json_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for id in ["a", "b", "c"] {
        journal.append(&event(id));
    }
    assert_eq!(journal.backlog(), 3);
    let ids: Vec<String> = read_lines(dir.path())
        .iter()
        .map(|line| serde_json::from_str::<UsageEvent>(line).unwrap().request_id)
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn open_counts_old_rows_and_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = File::create(segment_path(dir.path(), 7)).unwrap();
    write!(old, "{}{}{{\"request_id\":\"cut", line("a"), line("b")).unwrap();
    fs::write(dir.path().join("notes.txt"), "not a segment\n").unwrap();

    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.backlog(), 2, "the unfinished last line is no row");
    assert_eq!(list_segments(dir.path()).unwrap(), [7, 8]);
    assert_eq!(journal.first_segment(), 7);
    assert_eq!(journal.newest_segment(), 8);
}

#[test]
fn segments_rotate_past_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open_with_limit(dir.path(), 1000).unwrap();
    for n in 0..10 {
        journal.append(&event(&format!("row-{n}")));
    }
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 3, "{segments:?}");
    assert_eq!(journal.newest_segment(), *segments.last().unwrap());
    assert_eq!(read_lines(dir.path()).len(), 10);
}

#[test]
fn a_failed_write_keeps_the_row_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.break_tail();
    journal.append(&event("a"));
    journal.append(&event("b"));
    assert_eq!(journal.backlog(), 2);
    let kept: Vec<String> = journal
        .take_overflow(10)
        .into_iter()
        .map(|row| row.request_id)
        .collect();
    assert_eq!(kept, ["a", "b"]);
}

#[test]
fn rows_kept_in_memory_are_saved_to_a_new_segment_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.break_tail();
    journal.append(&event("a"));
    journal.persist_unwritten(vec![event("b")]);
    let lines = read_lines(dir.path());
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"b\"") && lines[1].contains("\"a\""));
    assert_eq!(
        journal.backlog(),
        1,
        "b was counted by its own append, not here"
    );
}

/// A small tmpfs that can be filled to the last byte: a real full disk. `None` where this
/// process may not mount (not root, no tmpfs), and the caller falls back to `break_tail`.
///
/// Mounted and unmounted with the system calls, never a `mount` process: a child started
/// while another test holds a file open shares that file until it execs, which keeps a
/// dropped journal's `LOCK` locked or a deleted file's blocks in use for that moment.
pub(crate) struct FullDisk {
    folder: tempfile::TempDir,
}

impl FullDisk {
    pub(crate) fn mount() -> Option<FullDisk> {
        let folder = tempfile::tempdir().unwrap();
        #[cfg(target_os = "linux")]
        let mounted = rustix::mount::mount(
            "tmpfs",
            folder.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            c"size=256k,mode=0755",
        )
        .is_ok();
        #[cfg(not(target_os = "linux"))]
        let mounted = false;
        if !mounted {
            eprintln!("cannot mount a tmpfs here; simulating the full disk with /dev/full");
        }
        mounted.then_some(FullDisk { folder })
    }

    pub(crate) fn path(&self) -> &Path {
        self.folder.path()
    }

    /// Takes every free byte.
    pub(crate) fn fill(&self) {
        let mut filler = File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
        while filler.write_all(&block[..1]).is_ok() {}
    }

    /// Gives every byte `fill` took back at once: emptied before it is deleted, so no other
    /// holder of the file can keep its blocks.
    pub(crate) fn free(&self) {
        let filler = self.path().join("filler");
        File::options()
            .write(true)
            .open(&filler)
            .and_then(|file| file.set_len(0))
            .unwrap();
        fs::remove_file(filler).unwrap();
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        let _ = rustix::mount::unmount(self.folder.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A journal whose writes fail as on a full disk: on a filled tmpfs when one can be mounted,
/// else through `/dev/full` (until a new segment is forced, at stop).
/// The disk comes first, so that `let (_disk, journal)` drops the journal before unmounting.
pub(crate) fn unwritable(options: &JournalOptions) -> (Option<FullDisk>, Journal) {
    let disk = FullDisk::mount();
    let fallback = tempfile::tempdir().unwrap();
    let dir = disk.as_ref().map_or(fallback.path(), FullDisk::path);
    let journal = Journal::open_with(&dir.join("journal"), options).unwrap();
    match &disk {
        Some(disk) => disk.fill(),
        None => journal.break_tail(),
    }
    (disk, journal)
}

pub(crate) fn bounded(memory_rows: u64, on_full: OnJournalFull) -> JournalOptions {
    JournalOptions {
        memory_rows,
        on_full,
        database_id: None,
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_folder_and_its_files_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("journal");
    let journal = Journal::open_with(&dir, &bounded(10, OnJournalFull::Serve)).unwrap();
    journal.append(&event("a"));
    journal.reject(&event("b"), "refused");
    drop(journal);
    let journal = Journal::open_with(
        &dir,
        &JournalOptions {
            database_id: Some("db-1".into()),
            ..JournalOptions::default()
        },
    )
    .unwrap();
    assert_eq!(mode(&dir), 0o700, "the journal folder");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(dir.join(ID_FILE).exists() && dir.join(REJECTED_FILE).exists());
    drop(journal);
}

#[test]
fn a_full_disk_is_reported_and_rows_past_the_memory_bound_are_counted_as_lost() {
    let (_disk, journal) = unwritable(&bounded(5, OnJournalFull::Serve));
    for n in 0..8 {
        journal.append(&event(&format!("row-{n}")));
    }
    let health = journal.health();
    assert!(health.journal_failing_since.is_some(), "{health:?}");
    assert!(health.journal_error.is_some());
    assert_eq!((health.rows_in_memory, health.rows_lost), (5, 3));
    assert_eq!(health.backlog, 5, "lost rows leave the backlog");
    assert!(journal.accepting(), "the serve policy keeps serving");
    let kept: Vec<String> = journal
        .take_overflow(100)
        .into_iter()
        .map(|row| row.request_id)
        .collect();
    assert_eq!(kept, ["row-0", "row-1", "row-2", "row-3", "row-4"]);
    assert_eq!(journal.health().rows_in_memory, 5, "held until committed");
    journal.record_commit(5, 5, 5);
    assert_eq!(journal.health().rows_in_memory, 0);
    journal.append(&event("row-8"));
    assert_eq!(journal.health().rows_lost, 3, "room again: kept");
}

#[test]
fn the_refuse_policy_stops_accepting_at_the_bound_and_loses_nothing() {
    let (_disk, journal) = unwritable(&bounded(3, OnJournalFull::Refuse));
    for n in 0..3 {
        assert!(journal.accepting());
        journal.append(&event(&format!("row-{n}")));
    }
    assert!(!journal.accepting(), "bound reached");
    journal.append(&event("admitted-before"));
    let health = journal.health();
    assert_eq!((health.rows_in_memory, health.rows_lost), (4, 0));
    let taken = journal.take_overflow(10);
    journal.record_commit(taken.len() as u64, 4, taken.len() as u64);
    assert!(journal.accepting(), "the database took the rows");
}

#[test]
fn the_journal_recovers_when_the_disk_has_room_again() {
    let Some(disk) = FullDisk::mount() else {
        return;
    };
    let journal = Journal::open(&disk.path().join("journal")).unwrap();
    disk.fill();
    journal.append(&event("a"));
    assert!(journal.health().journal_failing_since.is_some());
    journal.append(&event("a2"));
    disk.free();
    journal.append(&event("b"));
    let health = journal.health();
    assert_eq!(health.journal_failing_since, None, "{health:?}");
    assert_eq!(health.rows_in_memory, 2, "a and a2 wait for the writer");
    assert_eq!(
        list_segments(&disk.path().join("journal")).unwrap().len(),
        1,
        "no new segment per failed attempt; writes resume at once"
    );
    let ids: Vec<String> = read_lines(&disk.path().join("journal"))
        .iter()
        .map(|line| serde_json::from_str::<UsageEvent>(line).unwrap().request_id)
        .collect();
    assert_eq!(ids, ["b"]);
}

/// A row written into the room left in the segment's last page, with the rest of the disk
/// full, fails part way: that segment is closed for good, and once the disk has room again
/// the very next row is written, to one new segment.
#[test]
fn after_a_row_half_written_on_a_full_disk_the_next_row_is_written_as_soon_as_there_is_room() {
    let Some(disk) = FullDisk::mount() else {
        return;
    };
    let dir = disk.path().join("journal");
    let journal = Journal::open(&dir).unwrap();
    journal.append(&event("before"));
    disk.fill();
    let mut n = 0;
    while journal.health().journal_failing_since.is_none() {
        journal.append(&event(&format!("slack-{n}")));
        n += 1;
    }
    let cut = format!("slack-{}", n - 1);
    let first = fs::read_to_string(segment_path(&dir, 1)).unwrap();
    assert!(!first.ends_with('\n'), "{cut} was written in part");
    journal.append(&event("still-full"));
    assert_eq!(list_segments(&dir).unwrap(), [1, 2]);
    disk.free();
    journal.append(&event("after"));
    let health = journal.health();
    assert_eq!(health.journal_failing_since, None, "{health:?}");
    assert_eq!(health.rows_in_memory, 2, "{cut} and still-full");
    assert_eq!(
        list_segments(&dir).unwrap(),
        [1, 2],
        "no segment per attempt"
    );
    assert_eq!(
        fs::read_to_string(segment_path(&dir, 2)).unwrap(),
        line("after")
    );
}

#[test]
fn rows_of_another_database_are_set_aside_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let for_db = |id: &str| JournalOptions {
        database_id: Some(id.to_owned()),
        ..JournalOptions::default()
    };
    let journal = Journal::open_with(dir.path(), &for_db("db-a")).unwrap();
    journal.append(&event("a-1"));
    journal.append(&event("a-2"));
    journal.reject(&event("a-3"), "refused");
    drop(journal);

    let journal = Journal::open_with(dir.path(), &for_db("db-b")).unwrap();
    assert_eq!(
        journal.backlog(),
        0,
        "nothing of db-a is replayed into db-b"
    );
    let aside = journal.health().set_aside.unwrap();
    let folder = dir.path().join(FOREIGN_DIR).join("db-a");
    assert_eq!((aside.rows, &aside.database_id), (2, &"db-a".to_owned()));
    assert_eq!(aside.folder, folder);
    assert_eq!(read_lines(&folder).len(), 2);
    assert!(folder.join(REJECTED_FILE).exists());
    assert!(!dir.path().join(REJECTED_FILE).exists());
    assert_eq!(
        fs::read_to_string(dir.path().join(ID_FILE)).unwrap().trim(),
        "db-b"
    );
    journal.append(&event("b-1"));
    drop(journal);

    let journal = Journal::open_with(dir.path(), &for_db("db-b")).unwrap();
    assert_eq!(journal.backlog(), 1, "its own rows stay");
    assert_eq!(journal.health().set_aside, None);
    drop(journal);

    let journal = Journal::open_with(dir.path(), &for_db("db-a")).unwrap();
    assert_eq!(journal.backlog(), 2, "db-a's rows come back to db-a");
    assert_eq!(journal.health().set_aside.map(|aside| aside.rows), Some(1));
    let ids: Vec<String> = read_lines(dir.path())
        .iter()
        .map(|line| serde_json::from_str::<UsageEvent>(line).unwrap().request_id)
        .collect();
    assert_eq!(ids, ["a-1", "a-2"]);
    assert_eq!(
        read_lines(&dir.path().join(FOREIGN_DIR).join("db-b")).len(),
        1
    );
}

#[test]
fn a_folder_without_an_id_is_taken_by_the_first_database() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.append(&event("old"));
    drop(journal);
    let options = JournalOptions {
        database_id: Some("db-a".to_owned()),
        ..JournalOptions::default()
    };
    let journal = Journal::open_with(dir.path(), &options).unwrap();
    assert_eq!(journal.backlog(), 1);
    assert_eq!(journal.health().set_aside, None);
}

#[test]
fn a_full_disk_at_start_leaves_the_folder_unbound_but_opens() {
    let Some(disk) = FullDisk::mount() else {
        return;
    };
    let dir = disk.path().join("journal");
    let options = |id: &str| JournalOptions {
        database_id: Some(id.to_owned()),
        ..JournalOptions::default()
    };
    drop(Journal::open_with(&dir, &options("db-a")).unwrap());
    disk.fill();
    let journal = Journal::open_with(&dir, &options("db-b")).unwrap();
    assert!(!dir.join(ID_FILE).exists(), "never left saying db-a");
    drop(journal);
    disk.free();
    drop(Journal::open_with(&dir, &options("db-b")).unwrap());
    assert_eq!(
        fs::read_to_string(dir.join(ID_FILE)).unwrap().trim(),
        "db-b"
    );
}
