//! Serving the router on the listener with bounds on connections: at most `max_connections`
//! open (past it the listener waits), a whole request header within `header_timeout`, and a
//! keep-alive connection with no request open closed after `idle_timeout`. Shutdown stops
//! accepting and lets each connection finish what it has started. hyper's own answers to
//! requests it cannot parse (400, 414, 431) get OpenAI-shaped bodies on the way out.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ServerConfig;

mod activity;
pub mod admission;
mod parse_error;

use activity::{Activity, Watched};

/// After a failed `accept` (say, out of file handles), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The connection bounds, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(config: &ServerConfig) -> Self {
        Self {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// Accepts connections until `shutdown`, then waits for the open ones to finish: each is told
/// to close once its requests (streams included) are answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    warn_if_files_run_out(limits.max_connections);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        connections.spawn(connection(
            stream,
            router.clone(),
            limits,
            shutdown.clone(),
            slot,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection (HTTP/1.1, or HTTP/2 with prior knowledge) until it closes, its
/// watchdog fires, or shutdown has let it finish.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    // Small SSE frames should leave at once.
    let _ = stream.set_nodelay(true);
    let _open = OpenConnection::count();
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |request: Request<Incoming>| {
            let busy = activity.begin();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(busy.track(response))
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog times headers and idleness; hyper's own header timer would also cut idle
    // keep-alive connections at the header timeout.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            reason = activity.expired(limits.header_timeout, limits.idle_timeout) => {
                tracing::debug!(reason, "closing a connection");
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                // A connection without a request open has nothing to finish.
                if !activity.busy() {
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Counts open connections in `glm_gateway_open_connections` while it lives.
struct OpenConnection;

impl OpenConnection {
    fn count() -> Self {
        metrics::gauge!("glm_gateway_open_connections").increment(1.0);
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("glm_gateway_open_connections").decrement(1.0);
    }
}

/// Each connection takes a file handle; the database pool, the upstream client and the journal
/// need some too.
fn warn_if_files_run_out(max_connections: usize) {
    const SPARE: u64 = 256;
    if let Ok((soft, _)) = rlimit::Resource::NOFILE.get() {
        let wanted = u64::try_from(max_connections)
            .unwrap_or(u64::MAX)
            .saturating_add(SPARE);
        if wanted > soft {
            tracing::warn!(
                max_connections,
                open_file_limit = soft,
                "server.max_connections is above what the open-file limit allows"
            );
        }
    }
}

/// Raises the soft limit on open files to the hard limit, where the platform has one; returns
/// the limit now in force.
pub fn raise_file_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}
