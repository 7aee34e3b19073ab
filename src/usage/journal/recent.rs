//! Rows the journal wrote lately, kept parsed for the writer, which reads every row back from
//! its segment: a row found here costs the writer no JSON parse. The segment stays the record
//! (after a restart, or for a row that fell out of this bounded queue, the line is parsed).

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{lock, UsageEvent};

/// Enough for the rows of a few flushes at thousands of requests a second; while the writer
/// cannot insert (and so reads nothing), the oldest fall out.
const KEPT: usize = 1024;

#[derive(Default)]
pub(super) struct Recent {
    /// (segment, offset of the line) → the row, in append order.
    rows: Mutex<VecDeque<(u64, u64, UsageEvent)>>,
}

impl Recent {
    /// Called under the journal's tail lock, so positions arrive in order.
    pub(super) fn keep(&self, segment: u64, offset: u64, row: &UsageEvent) {
        let mut rows = lock(&self.rows);
        if rows.len() >= KEPT {
            rows.pop_front();
        }
        rows.push_back((segment, offset, row.clone()));
    }

    /// The row written at `offset` of `segment`, if kept; rows before it are dropped (the
    /// writer reads in append order, so it will not ask for them).
    pub(super) fn take(&self, segment: u64, offset: u64) -> Option<UsageEvent> {
        let mut rows = lock(&self.rows);
        while let Some((seg, off, _)) = rows.front() {
            match (*seg, *off).cmp(&(segment, offset)) {
                std::cmp::Ordering::Less => {
                    rows.pop_front();
                }
                std::cmp::Ordering::Equal => return rows.pop_front().map(|(_, _, row)| row),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::super::tests::event;
    use super::super::Journal;
    use crate::usage::reader::SegmentReader;
    use crate::usage::UsageEvent;

    fn read_all(journal: &Journal) -> Vec<UsageEvent> {
        let mut reader = SegmentReader::new(journal);
        std::iter::from_fn(|| reader.next_row(journal).unwrap()).collect()
    }

    /// The rows the writer gets from memory are the rows their lines parse to, as a writer
    /// after a restart (with nothing kept) reads them.
    #[test]
    fn kept_rows_are_the_rows_their_lines_parse_to() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows: Vec<UsageEvent> = (0..5).map(|n| event(&format!("row-{n}"))).collect();
        rows[1].cost = Some("0.0000123456789012345".parse().unwrap());
        rows[2].created_at = Utc.timestamp_nanos(1_790_000_000_123_456_789);
        rows[3].prompt_text = Some("line\nbreak \u{1b} é".into());
        let journal = Journal::open(dir.path()).unwrap();
        for row in &rows {
            journal.append(row);
        }
        assert_eq!(journal.recent.rows.lock().unwrap().len(), 5);
        assert_eq!(read_all(&journal), rows);
        assert!(
            journal.recent.rows.lock().unwrap().is_empty(),
            "taken, not parsed"
        );
        drop(journal);
        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(read_all(&reopened), rows);
    }
}
