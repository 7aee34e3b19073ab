//! What one connection is doing, for its watchdog: waiting for a request's header (since when),
//! idle between requests (since when), or busy with requests. `Watched` notes the bytes that
//! arrive (and swaps hyper's empty parse-error answers for JSON ones, see `parse_error`);
//! `Busy` lasts from a request's header until its response body is done or dropped.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::response::Response;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request header complete yet: since the connection opened, or since the first byte
    /// after an idle spell.
    WaitingHead(Instant),
    /// Every response done, nothing new received.
    Idle(Instant),
    /// Requests open (more than one with HTTP/2).
    Busy(usize),
}

#[derive(Debug)]
pub(super) struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::WaitingHead(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let next = change(*phase);
        if next != *phase {
            *phase = next;
            self.changed.notify_one();
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn busy(&self) -> bool {
        matches!(self.phase(), Phase::Busy(_))
    }

    fn waiting_head(&self) -> bool {
        matches!(self.phase(), Phase::WaitingHead(_))
    }

    /// Bytes arrived: after an idle spell, a new request has begun. (With HTTP/2 any frame
    /// counts, a ping too: an idle HTTP/2 connection that pings is closed at the header
    /// timeout rather than the idle one.)
    fn received(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::WaitingHead(Instant::now()),
            other => other,
        });
    }

    /// A request's header was read; busy until the returned guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> BusyGuard {
        self.update(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        BusyGuard(Arc::clone(self))
    }

    /// Completes when a header has taken longer than `header`, or the connection has been idle
    /// for `idle`; says which.
    pub(super) async fn expired(&self, header: Duration, idle: Duration) -> &'static str {
        loop {
            let deadline = match self.phase() {
                Phase::WaitingHead(since) => Some((since + header, "header timeout")),
                Phase::Idle(since) => Some((since + idle, "idle timeout")),
                Phase::Busy(_) => None,
            };
            match deadline {
                Some((at, reason)) if at <= Instant::now() => return reason,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// One open request.
pub(super) struct BusyGuard(Arc<Activity>);

impl BusyGuard {
    /// Keeps the request open until its response body is done.
    pub(super) fn track(self, response: Response) -> Response {
        response.map(|body| Body::new(Tracked { body, _busy: self }))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

struct Tracked {
    body: Body,
    _busy: BusyGuard,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, noting what it reads.
pub(super) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
    /// A reply written in place of hyper's; after it, whatever hyper writes is dropped (it
    /// closes the connection next).
    replaced: Option<Replaced>,
}

struct Replaced {
    reply: Vec<u8>,
    written: usize,
    /// What hyper asked to write, reported as written.
    claimed: usize,
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            replaced: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.received();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replaced.is_none() && this.activity.waiting_head() {
            if let Some(reply) = super::parse_error::replacement(buf) {
                this.replaced = Some(Replaced {
                    reply,
                    written: 0,
                    claimed: buf.len(),
                });
            }
        }
        let Some(replaced) = &mut this.replaced else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while replaced.written < replaced.reply.len() {
            let rest = &replaced.reply[replaced.written..];
            match ready!(Pin::new(&mut this.inner).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => replaced.written += n,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        let claimed = std::mem::replace(&mut replaced.claimed, 0);
        Poll::Ready(Ok(if claimed > 0 { claimed } else { buf.len() }))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // While no request is open, writes go one slice at a time through `poll_write`.
        if self.replaced.is_some() || self.activity.waiting_head() {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
