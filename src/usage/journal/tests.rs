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
        cost: Some(0.0012),
        prompt_text: None,
        emulated: None,
        completion_text: None,
    }
}

/// A JSON line for a segment written by hand.
pub(crate) fn line(id: &str) -> String {
    format!("{}\n", serde_json::to_string(&event(id)).unwrap())
}

impl Journal {
    /// Makes the next write fail as on a full disk.
    pub(crate) fn break_tail(&self) {
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        lock(&self.tail).file = Some(full);
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
