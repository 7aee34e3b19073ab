//! A Server-Sent Events parser linear in its input: each byte is scanned for a line end once,
//! however the stream is chunked, and no line or event may grow past a cap. `SseStream` adapts
//! a stream of `Bytes` chunks into `SseEvent`s; it owns no timers and knows no protocol.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// One dispatched event: its `event:` name, if any, and its `data:` lines joined by `\n`.
///
/// The data is decoded per event, lossily: a byte that is not UTF-8 becomes U+FFFD in this
/// event only. Whether that event is still usable is left to whoever parses `data` (inside a
/// JSON string it is, in JSON syntax it is not); the events around it are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// A line or an event went past the cap; the rest of the stream is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an SSE line or event is longer than {limit} bytes")]
pub struct TooLarge {
    pub limit: usize,
}

/// The push parser: `feed` bytes in any chunking, collect the events it completes.
#[derive(Debug)]
pub struct SseParser {
    limit: usize,
    /// The unfinished line (bytes after the last line end).
    line: Vec<u8>,
    /// The last chunk ended in `\r`: a `\n` starting the next one belongs to that line end.
    after_cr: bool,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
}

impl SseParser {
    /// `limit` caps both a single line and an event's accumulated data, in bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            line: Vec::new(),
            after_cr: false,
            data: Vec::new(),
            has_data: false,
            event: None,
        }
    }

    /// Takes the next bytes; appends each event they complete to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), TooLarge> {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(at) = memchr::memchr2(b'\n', b'\r', chunk) {
            let (piece, rest) = chunk.split_at(at);
            let mut rest = &rest[1..];
            if chunk[at] == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.check(piece.len())?;
                self.take_line(piece, out)?;
            } else {
                self.check(self.line.len() + piece.len())?;
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(piece);
                self.take_line(&line, out)?;
                line.clear();
                self.line = line;
            }
            chunk = rest;
        }
        self.check(self.line.len() + chunk.len())?;
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    fn check(&self, len: usize) -> Result<(), TooLarge> {
        if len > self.limit {
            Err(TooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }

    fn take_line(&mut self, line: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), TooLarge> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                let separator = usize::from(self.has_data);
                self.check(self.data.len() + separator + value.len())?;
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let bytes = std::mem::take(&mut self.data);
        let data = String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        out.push_back(SseEvent { event, data });
    }
}

/// Why an `SseStream` ended early.
#[derive(Debug, thiserror::Error)]
pub enum SseError<E> {
    #[error(transparent)]
    Transport(E),
    #[error(transparent)]
    TooLarge(TooLarge),
}

/// Events from a stream of byte chunks. After an error it ends; an unfinished event at the end
/// of the input is dropped, as the SSE specification says.
pub struct SseStream<S> {
    inner: S,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    /// Sent once the events completed before it are out.
    failed: Option<TooLarge>,
    done: bool,
}

impl<S> SseStream<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            parser: SseParser::new(limit),
            ready: VecDeque::new(),
            failed: None,
            done: false,
        }
    }
}

impl<S, E> Stream for SseStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<SseEvent, SseError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(error) = this.failed.take() {
                return Poll::Ready(Some(Err(SseError::TooLarge(error))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Err(error))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(SseError::Transport(error))));
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(error) = this.parser.feed(&chunk, &mut this.ready) {
                        this.done = true;
                        this.failed = Some(error);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
