//! Relays an upstream SSE stream to the client, event by event, through a `StreamTranslator`
//! (one per protocol: chat chunks, Responses events). The upstream is read in a task of its
//! own, so that a client leaving mid-answer does not cut the read short: the upstream's final
//! usage still arrives (within a drain limit). Events are cut by `sse::SseStream` under a size
//! cap, and an upstream silent for `idle_timeout` between chunks ends the stream with a 504.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::error::{ApiError, ErrorCode};
use crate::openai::responses::ResponsesStream;
use crate::openai::stream::{ChunkRewriter, UpstreamEvent};
use crate::sse::{SseError, SseStream};
use crate::upstream::UpstreamResponse;
use crate::usage::{StreamEnd, Tap, UsageTicket};

/// Frames waiting for a slow client; past this the upstream read waits too (TCP backpressure),
/// which bounds a stream's memory.
const CHANNEL_FRAMES: usize = 16;
/// A client that accepts no frame for this long is taken to be gone.
const STALLED_CLIENT: Duration = Duration::from_secs(60);

/// Turns one upstream protocol's events into the client's frames, and shows each parsed event
/// to the ledger's `Tap`. Once finished it sends nothing more.
pub trait StreamTranslator: Send + 'static {
    /// One upstream SSE event's `data`.
    fn push(&mut self, data: &str, tap: &mut Tap) -> Vec<Bytes>;
    /// The upstream ended; `failure` when reading failed or was stopped.
    fn finish(&mut self, failure: Option<&ApiError>) -> Vec<Bytes>;
    fn is_finished(&self) -> bool;
    /// The code of the error the stream ended with, for the row.
    fn error_code(&self) -> Option<String>;
}

impl StreamTranslator for ChunkRewriter {
    fn push(&mut self, data: &str, tap: &mut Tap) -> Vec<Bytes> {
        let event = UpstreamEvent::parse(data);
        if let UpstreamEvent::Chunk(chunk) = &event {
            tap.chat_chunk(chunk);
        }
        self.push_event(event)
    }

    fn finish(&mut self, failure: Option<&ApiError>) -> Vec<Bytes> {
        ChunkRewriter::finish(self, failure)
    }

    fn is_finished(&self) -> bool {
        ChunkRewriter::is_finished(self)
    }

    fn error_code(&self) -> Option<String> {
        self.error().map(|e| e.code.as_str().to_owned())
    }
}

impl StreamTranslator for ResponsesStream {
    fn push(&mut self, data: &str, tap: &mut Tap) -> Vec<Bytes> {
        let event = UpstreamEvent::parse(data);
        if let UpstreamEvent::Chunk(event) = &event {
            tap.responses_event(event);
        }
        self.push_event(event)
    }

    fn finish(&mut self, failure: Option<&ApiError>) -> Vec<Bytes> {
        ResponsesStream::finish(self, failure)
    }

    fn is_finished(&self) -> bool {
        ResponsesStream::is_finished(self)
    }

    fn error_code(&self) -> Option<String> {
        ResponsesStream::error_code(self)
    }
}

pub struct RelayOptions {
    pub include_usage: bool,
    /// How long the upstream is still read after the client has gone, to learn the usage.
    pub drain_timeout: Duration,
    /// Fired when the gateway's shutdown grace is over: the stream then ends at once with an
    /// error event, and its row is written.
    pub hard_stop: CancellationToken,
    /// The longest the upstream may send nothing while a stream is open.
    pub idle_timeout: Duration,
    /// The cap on one SSE line or event from the upstream.
    pub max_event_bytes: usize,
}

impl RelayOptions {
    /// A chat stream's translator, honouring the client's `include_usage`.
    pub fn chat(&self) -> ChunkRewriter {
        ChunkRewriter::new(self.include_usage)
    }
}

/// Starts relaying and returns the client's response at once. The ticket's row is written in
/// the relay task once the upstream is done, before the last frames are handed to the client,
/// so that what the client sees complete is already recorded.
pub fn relay_sse(
    upstream: UpstreamResponse,
    translator: impl StreamTranslator,
    options: RelayOptions,
    tasks: &TaskTracker,
    ticket: &UsageTicket,
) -> Response {
    let (frames, receiver) = mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    let ticket = ticket.claim_stream();
    let relay = pump(upstream, translator, options, frames, ticket);
    tasks.spawn(relay.in_current_span());
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|frame| (Ok::<_, Infallible>(frame), receiver))
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn pump(
    upstream: UpstreamResponse,
    mut rewriter: impl StreamTranslator,
    options: RelayOptions,
    frames: mpsc::Sender<Bytes>,
    ticket: UsageTicket,
) {
    let UpstreamResponse { response, deadline } = upstream;
    let mut tap = Tap::new(ticket.keeps_text());
    let mut events = SseStream::new(
        idle_limited(response, options.idle_timeout),
        options.max_event_bytes,
    );
    let mut client_disconnected = false;
    let mut stop_at = deadline;
    let mut ticket = Some(ticket);
    let mut first_frame = true;
    // Ends only through `done`, which hands the outcome over first.
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(stop_at, events.next()) => {
                next.map(|item| item.map(|event| event.map_err(Interrupted::Upstream)))
            }
            () = options.hard_stop.cancelled() => Ok(Some(Err(Interrupted::Shutdown))),
        };
        let batch = match next {
            Ok(Some(Ok(event))) => rewriter.push(&event.data, &mut tap),
            Ok(Some(Err(Interrupted::Upstream(error)))) => {
                rewriter.finish(Some(&read_failure(&error)))
            }
            Ok(Some(Err(Interrupted::Shutdown))) => rewriter.finish(Some(&shutting_down())),
            Ok(None) => rewriter.finish(None),
            Err(_) if client_disconnected => {
                tracing::info!("stopped draining a stream whose client left");
                Vec::new()
            }
            Err(_) => rewriter.finish(Some(&ApiError::upstream_timeout(
                "The upstream did not finish its answer in time.",
            ))),
        };
        if first_frame && !batch.is_empty() {
            first_frame = false;
            if let Some(ticket) = &ticket {
                ticket.first_frame();
            }
        }
        let done = rewriter.is_finished()
            || options.hard_stop.is_cancelled()
            || (client_disconnected && Instant::now() >= stop_at);
        if done {
            if let Some(ticket) = ticket.take() {
                ticket.finish_stream(StreamEnd {
                    tap: std::mem::take(&mut tap),
                    client_disconnected,
                    error_code: rewriter.error_code(),
                });
            }
        }
        for frame in batch {
            if client_disconnected {
                break;
            }
            if !deliver(&frames, frame, deadline).await {
                client_disconnected = true;
                stop_at = deadline.min(Instant::now() + options.drain_timeout);
            }
        }
        if done {
            break;
        }
    }
}

/// Hands a frame to the client's side. A client that stops reading but keeps its connection
/// counts as gone once it has taken nothing for a while; only then is a timer needed, so a
/// client that keeps up costs none.
async fn deliver(frames: &mpsc::Sender<Bytes>, frame: Bytes, deadline: Instant) -> bool {
    match frames.try_send(frame) {
        Ok(()) => true,
        Err(TrySendError::Closed(_)) => false,
        Err(TrySendError::Full(frame)) => {
            let accepted = deadline.min(Instant::now() + STALLED_CLIENT);
            matches!(
                tokio::time::timeout_at(accepted, frames.send(frame)).await,
                Ok(Ok(()))
            )
        }
    }
}

/// Why reading the upstream stopped early.
enum Interrupted {
    Upstream(SseError<ReadError>),
    Shutdown,
}

/// Why the upstream's bytes stopped coming.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Http(reqwest::Error),
    #[error("the upstream sent nothing for {0:?}")]
    Idle(Duration),
}

/// The upstream's body, failing with `ReadError::Idle` when no chunk comes for `idle`. The
/// timer runs only while the relay waits for the upstream, not while a slow client is served.
fn idle_limited(
    response: reqwest::Response,
    idle: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, ReadError>> + Unpin {
    let body = Box::pin(response.bytes_stream());
    Box::pin(futures_util::stream::unfold(
        Some(body),
        move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
                Ok(Some(Err(error))) => Some((Err(ReadError::Http(error)), None)),
                Ok(None) => None,
                Err(_) => Some((Err(ReadError::Idle(idle)), None)),
            }
        },
    ))
}

/// The error event for a stream whose reading failed.
fn read_failure(error: &SseError<ReadError>) -> ApiError {
    tracing::warn!(%error, "upstream stream failed");
    match error {
        SseError::TooLarge(too_large) => ApiError::new(
            ErrorCode::UpstreamEventTooLarge,
            format!(
                "The upstream sent a stream event larger than {} bytes.",
                too_large.limit
            ),
        ),
        SseError::Transport(ReadError::Idle(idle)) => ApiError::new(
            ErrorCode::UpstreamIdleTimeout,
            format!("The upstream sent nothing for {} seconds.", idle.as_secs()),
        )
        .no_retry(),
        SseError::Transport(ReadError::Http(_)) => {
            ApiError::new(ErrorCode::UpstreamError, "The upstream stream failed.")
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        ErrorCode::GatewayShuttingDown,
        "The gateway is shutting down; the answer was cut short.",
    )
}
