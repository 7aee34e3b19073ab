//! What every handler shares: one `Arc`, so the clones axum makes for each layer and handler
//! of a request cost one atomic increment each.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::keys::KeyCache;
use crate::limits::Limiter;
use crate::relay::RelayOptions;
use crate::store::Db;
use crate::upstream::ZhipuClient;
use crate::usage::Ledger;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<KeyCache>,
    pub zhipu: Arc<ZhipuClient>,
    pub ledger: Arc<Ledger>,
    pub limits: Arc<Limiter>,
    /// Work that outlives its request (stream relays, background reloads); awaited at shutdown.
    pub tasks: TaskTracker,
    /// Fired when the gateway begins to shut down.
    pub shutdown: CancellationToken,
    /// Fired when the shutdown grace is over: open streams then end at once.
    pub hard_stop: CancellationToken,
    pub metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// How streams are relayed: the client's `include_usage`, the drain limit, the hard stop,
    /// the upstream's idle limit and the event size cap.
    pub fn relay_options(&self, include_usage: bool) -> RelayOptions {
        RelayOptions {
            include_usage,
            drain_timeout: self.config.usage.drain_timeout,
            hard_stop: self.hard_stop.clone(),
            idle_timeout: self.config.zhipu.stream_idle_timeout,
            max_event_bytes: self.config.server.max_sse_event_bytes,
        }
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Arc<KeyCache> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.keys)
    }
}

impl FromRef<AppState> for Arc<Ledger> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.ledger)
    }
}
