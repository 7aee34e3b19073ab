//! One request's clock: when it arrived and how long it waited on the upstream, so that its
//! metrics can tell Zhipu's time from the gateway's own. `observe` makes one per request and
//! runs the request in its task-local scope; the upstream client times each call with an
//! `UpstreamTimer` without being handed anything. Atomics only, no lock.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::SharedString;

tokio::task_local! {
    static CLOCK: Arc<RequestClock>;
}

pub struct RequestClock {
    started: Instant,
    route: SharedString,
    /// Upstream calls open now (an embeddings request makes several at once).
    in_flight: AtomicU32,
    /// Nanoseconds since `started` at which the current spell of open calls began.
    busy_since: AtomicU64,
    /// Nanoseconds with at least one upstream call open, over the spells that ended.
    busy: AtomicU64,
    called: AtomicBool,
    /// A stream's: when its upstream's first bytes came (ns since `started`; 0: not yet), and
    /// the time waited on the upstream until then.
    first_byte_at: AtomicU64,
    busy_to_first_byte: AtomicU64,
    streamed: AtomicBool,
}

impl RequestClock {
    pub fn new(route: SharedString) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            route,
            in_flight: AtomicU32::new(0),
            busy_since: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            called: AtomicBool::new(false),
            first_byte_at: AtomicU64::new(0),
            busy_to_first_byte: AtomicU64::new(0),
            streamed: AtomicBool::new(false),
        })
    }

    /// Runs `future` (the request) with this clock as the current one.
    pub fn scope<F: Future>(self: &Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        CLOCK.scope(Arc::clone(self), future)
    }

    /// The clock of the request being served, if any.
    pub fn current() -> Option<Arc<Self>> {
        CLOCK.try_with(Arc::clone).ok()
    }

    /// The route label (`/v1/chat/completions`, `unmatched`).
    pub fn route(&self) -> &SharedString {
        &self.route
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The answer is a stream: its durations are measured when it ends, not when its headers
    /// leave.
    pub fn mark_stream(&self) {
        self.streamed.store(true, Relaxed);
    }

    pub fn is_stream(&self) -> bool {
        self.streamed.load(Relaxed)
    }

    /// Time with an upstream call open, over the calls that ended; `None` without any call.
    pub fn upstream(&self) -> Option<Duration> {
        self.called
            .load(Relaxed)
            .then(|| Duration::from_nanos(self.busy.load(Relaxed)))
    }

    /// A stream's upstream time until its first bytes (retries included).
    pub fn upstream_to_first_byte(&self) -> Option<Duration> {
        (self.first_byte_at.load(Relaxed) > 0)
            .then(|| Duration::from_nanos(self.busy_to_first_byte.load(Relaxed)))
    }

    /// A stream's upstream time until now, its end: to its first bytes, then since.
    pub fn upstream_to_now(&self) -> Option<Duration> {
        let first_byte_at = self.first_byte_at.load(Relaxed);
        if first_byte_at == 0 {
            return self.upstream();
        }
        let since = self.now_ns().saturating_sub(first_byte_at);
        Some(Duration::from_nanos(
            self.busy_to_first_byte.load(Relaxed) + since,
        ))
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn call_began(&self) {
        self.called.store(true, Relaxed);
        if self.in_flight.fetch_add(1, Relaxed) == 0 {
            self.busy_since.store(self.now_ns(), Relaxed);
        }
    }

    fn call_ended(&self, stream_began: bool) {
        let now = self.now_ns();
        if self.in_flight.fetch_sub(1, Relaxed) == 1 {
            let spell = now.saturating_sub(self.busy_since.load(Relaxed));
            self.busy.fetch_add(spell, Relaxed);
        }
        if stream_began {
            self.busy_to_first_byte
                .store(self.busy.load(Relaxed), Relaxed);
            self.first_byte_at.store(now.max(1), Relaxed);
        }
    }
}

/// Times one upstream call (its attempts and backoffs, or the reading of a whole answer) for
/// the current request, from `start` until dropped. Outside a request it does nothing.
pub struct UpstreamTimer {
    clock: Option<Arc<RequestClock>>,
    stream_began: bool,
}

impl UpstreamTimer {
    pub fn start() -> Self {
        let clock = RequestClock::current();
        if let Some(clock) = &clock {
            clock.call_began();
        }
        Self {
            clock,
            stream_began: false,
        }
    }

    /// The call's answer is a stream whose first bytes have come: its rest is read later, by
    /// the relay, and counted up to the stream's end.
    pub fn stream_began(mut self) {
        self.stream_began = true;
    }
}

impl Drop for UpstreamTimer {
    fn drop(&mut self) {
        if let Some(clock) = &self.clock {
            clock.call_ended(self.stream_began);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlapping_calls_count_once_and_a_stream_counts_to_its_end() {
        let clock = RequestClock::new(SharedString::const_str("/r"));
        assert_eq!(clock.upstream(), None);
        clock
            .scope(async {
                let first = UpstreamTimer::start();
                let second = UpstreamTimer::start();
                std::thread::sleep(Duration::from_millis(20));
                drop(first);
                drop(second);
            })
            .await;
        let busy = clock.upstream().unwrap();
        assert!(busy >= Duration::from_millis(20), "{busy:?}");
        assert!(busy <= clock.elapsed(), "two open calls are one wait");
        assert_eq!(clock.upstream_to_first_byte(), None);

        clock
            .scope(async { UpstreamTimer::start().stream_began() })
            .await;
        let to_first_byte = clock.upstream_to_first_byte().unwrap();
        assert!(to_first_byte >= busy);
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.upstream_to_now().unwrap() >= to_first_byte + Duration::from_millis(5));
        assert!(UpstreamTimer::start().clock.is_none(), "outside a request");
    }
}
