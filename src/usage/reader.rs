//! The writer's view of the journal: segments read oldest first, line by line, with the
//! partial last line of a segment still being written kept until its end arrives.

use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Range;
use std::path::PathBuf;

use super::journal::{list_segments, segment_path, Journal};
use super::UsageEvent;

const READ_CHUNK: usize = 64 * 1024;

/// The writer's read position: one segment at a time, oldest first, keeping a partial last
/// line until its end arrives.
pub(super) struct SegmentReader {
    dir: PathBuf,
    seq: u64,
    file: Option<File>,
    buf: Vec<u8>,
    /// Where each read lands before its bytes join `buf`: zeroed once, not per read (the writer
    /// reads after every few appends).
    chunk: Box<[u8]>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
    /// The segment offset of `buf[0]`.
    base: u64,
    /// A newer segment exists, so this one gets no more writes: at its EOF, move on.
    newer_seen: bool,
    /// Segments read to the end, deleted once the batch holding their last rows commits.
    finished: Vec<u64>,
}

impl SegmentReader {
    pub(super) fn new(journal: &Journal) -> SegmentReader {
        SegmentReader {
            dir: journal.dir().to_path_buf(),
            seq: journal.first_segment(),
            file: None,
            buf: Vec::new(),
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            base: 0,
            newer_seen: false,
            finished: Vec::new(),
        }
    }

    /// The next row in append order, or `None` when caught up with the appends.
    pub(super) fn next_row(&mut self, journal: &Journal) -> io::Result<Option<UsageEvent>> {
        loop {
            if let Some(line) = self.next_line() {
                let offset = self.base + line.start as u64;
                if let Some(row) = journal.recent_row(self.seq, offset) {
                    return Ok(Some(row));
                }
                match parse_line(&self.buf[line], self.seq) {
                    Some(row) => return Ok(Some(row)),
                    None => journal.forget(1),
                }
                continue;
            }
            if self.read_more()? > 0 {
                continue;
            }
            if !self.newer_seen {
                // Checked before the final read: every write to this segment precedes the
                // newer segment's creation, so the read after seeing it gets them all.
                self.newer_seen = journal.newest_segment() > self.seq;
                if self.newer_seen {
                    continue;
                }
                return Ok(None);
            }
            self.next_segment(journal.newest_segment())?;
        }
    }

    fn next_line(&mut self) -> Option<Range<usize>> {
        let len = self.buf[self.start..].iter().position(|b| *b == b'\n')?;
        let line = self.start..self.start + len;
        self.start += len + 1;
        Some(line)
    }

    fn read_more(&mut self) -> io::Result<usize> {
        self.buf.drain(..self.start);
        self.base += self.start as u64;
        self.start = 0;
        let file = match &mut self.file {
            Some(file) => file,
            None => match File::open(segment_path(&self.dir, self.seq)) {
                Ok(file) => self.file.insert(file),
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(err) => return Err(err),
            },
        };
        let read = file.read(&mut self.chunk)?;
        self.buf.extend_from_slice(&self.chunk[..read]);
        Ok(read)
    }

    fn next_segment(&mut self, newest: u64) -> io::Result<()> {
        let next = list_segments(&self.dir)?
            .into_iter()
            .find(|seq| *seq > self.seq)
            .unwrap_or(newest);
        let partial = self.buf.len() - self.start;
        if partial > 0 {
            tracing::warn!(
                segment = self.seq,
                bytes = partial,
                "skipping an unfinished last line in a usage journal segment (its writer stopped mid-line)"
            );
        }
        self.finished.push(self.seq);
        self.seq = next;
        self.file = None;
        self.buf.clear();
        self.start = 0;
        self.base = 0;
        self.newer_seen = false;
        Ok(())
    }

    /// Call only with no uncommitted rows: every finished segment is then fully committed.
    pub(super) fn delete_finished(&mut self) {
        let dir = &self.dir;
        self.finished.retain(|seq| match fs::remove_file(segment_path(dir, *seq)) {
            Ok(()) => false,
            Err(err) if err.kind() == io::ErrorKind::NotFound => false,
            Err(err) => {
                tracing::warn!(error = %err, segment = *seq, "cannot delete a committed usage journal segment");
                true
            }
        });
    }
}

/// A row, or `None` for a line to skip: blank, or not a usage row (logged; never wedges).
fn parse_line(line: &[u8], seq: u64) -> Option<UsageEvent> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice(line) {
        Ok(row) => Some(row),
        Err(err) => {
            tracing::error!(error = %err, segment = seq, "skipping a usage journal line that is not a usage row");
            None
        }
    }
}
