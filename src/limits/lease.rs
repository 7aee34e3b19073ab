//! Rate windows spent through leases. A replica adds a share of a key's window to the shared
//! store at once (`limits.lease_fraction` of each limit) and admits requests against that share
//! in memory, going back to the store only when it runs out: one store call per lease rather
//! than one per request. The store still never counts past a limit, so the replicas together
//! never admit more than the limit; what one replica holds unspent is out of the others' reach
//! until the window ends, and a replica whose lease the store refuses goes on with exactly what
//! each request needs, so near a limit every admission is exact again.
//!
//! A request's real usage corrects this replica's lease when it settles; only usage beyond
//! what the replica has leased is added to the store. With `lease_fraction = 0` (and with the
//! in-memory store, which is this process already) each request goes to the store as itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::counters::{Counters, StoreError};
use crate::domain::WindowCount;

/// A key's limits per window; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub requests: Option<i64>,
    pub tokens: Option<i64>,
}

impl RateLimits {
    fn for_store(self) -> (i64, i64) {
        (
            self.requests.unwrap_or(i64::MAX),
            self.tokens.unwrap_or(i64::MAX),
        )
    }
}

pub struct Windows {
    counters: Arc<Counters>,
    window_secs: i64,
    /// The share of a limit taken per lease; 0 sends every request to the store.
    fraction: f64,
    /// Scope → its lease in the current window.
    leases: Mutex<HashMap<Box<str>, Lease>>,
}

/// Requests and tokens.
type Pair = (i64, i64);

#[derive(Default)]
struct Lease {
    window_start: i64,
    /// What this replica has added to the store's window.
    taken: Pair,
    /// What its requests have used of that, corrected by their settlements.
    used: Pair,
    /// The store's counts at this replica's last call (which include `taken`).
    seen: Pair,
    /// The store refused a lease larger than a request: the window is near a limit.
    tight: bool,
    /// The key has a token limit, so usage past the lease must reach the store.
    counts_tokens: bool,
    /// Held by the request asking the store for more, so requests that find the lease spent at
    /// the same moment wait for it rather than each taking a lease.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Lease {
    fn free(&self) -> Pair {
        (self.taken.0 - self.used.0, self.taken.1 - self.used.1)
    }

    /// What this replica knows the window holds: the store's counts less its unspent share.
    fn count(&self, admitted: bool) -> WindowCount {
        let free = self.free();
        WindowCount {
            admitted,
            requests: self.seen.0 - free.0.max(0),
            tokens: self.seen.1 - free.1.max(0),
        }
    }

    /// What a request of `tokens` needs beyond the unspent lease, for the limits that are set.
    fn shortfall(&self, tokens: i64, limits: RateLimits) -> Pair {
        let free = self.free();
        (
            limits.requests.map_or(0, |_| (1 - free.0.max(0)).max(0)),
            limits.tokens.map_or(0, |_| (tokens - free.1.max(0)).max(0)),
        )
    }

    fn spend(&mut self, tokens: i64, sign: i64) {
        self.used.0 += sign;
        self.used.1 += sign * tokens;
    }
}

impl Windows {
    pub fn new(counters: Arc<Counters>, window_secs: i64, fraction: f64) -> Self {
        Self {
            counters,
            window_secs,
            fraction,
            leases: Mutex::default(),
        }
    }

    /// Adds one request of `tokens` to the scope's window unless that would pass a limit.
    pub async fn take(
        &self,
        scope: &str,
        window_start: i64,
        tokens: i64,
        limits: RateLimits,
    ) -> Result<WindowCount, StoreError> {
        let turn = match self.spend_leased(scope, window_start, tokens, limits) {
            Spent::Yes(count) => return Ok(count),
            Spent::Direct => return self.direct(scope, window_start, tokens, limits).await,
            Spent::No(turn) => turn,
        };
        let _turn = turn.lock().await;
        // A request that held the turn before may have leased enough for this one too.
        let (need, extra) = match self.spend_leased(scope, window_start, tokens, limits) {
            Spent::Yes(count) => return Ok(count),
            Spent::Direct => return self.direct(scope, window_start, tokens, limits).await,
            Spent::No(_) => self.claim(scope, tokens, limits),
        };
        let mut result = self
            .ask_store(scope, window_start, need, extra, limits)
            .await;
        if matches!(result, Ok(ref count) if !count.admitted) && extra != (0, 0) {
            self.with_lease(scope, |lease| lease.tight = true);
            result = self
                .ask_store(scope, window_start, need, (0, 0), limits)
                .await;
        }
        let mut leases = lock(&self.leases);
        let Some(lease) = leases
            .get_mut(scope)
            .filter(|l| l.window_start == window_start)
        else {
            return result;
        };
        match result {
            Ok(count) => {
                lease.seen = (count.requests, count.tokens);
                if !count.admitted {
                    lease.spend(tokens, -1);
                }
                Ok(lease.count(count.admitted))
            }
            Err(error) => {
                lease.spend(tokens, -1);
                Err(error)
            }
        }
    }

    /// One request, straight to the store.
    async fn direct(
        &self,
        scope: &str,
        window_start: i64,
        tokens: i64,
        limits: RateLimits,
    ) -> Result<WindowCount, StoreError> {
        self.counters
            .take_window(
                scope,
                window_start,
                self.window_secs,
                (1, tokens),
                limits.for_store(),
            )
            .await
    }

    /// Spends from the lease when it holds enough; otherwise returns the turn to wait for.
    fn spend_leased(
        &self,
        scope: &str,
        window_start: i64,
        tokens: i64,
        limits: RateLimits,
    ) -> Spent {
        if self.fraction <= 0.0 {
            return Spent::Direct;
        }
        let mut leases = lock(&self.leases);
        if !leases.contains_key(scope) {
            leases.insert(scope.into(), Lease::default());
        }
        let Some(lease) = leases.get_mut(scope) else {
            return Spent::Direct;
        };
        if lease.window_start < window_start {
            *lease = Lease {
                window_start,
                turn: Arc::clone(&lease.turn),
                ..Lease::default()
            };
        } else if lease.window_start > window_start {
            return Spent::Direct;
        }
        lease.counts_tokens = limits.tokens.is_some();
        if lease.shortfall(tokens, limits) == (0, 0) {
            lease.spend(tokens, 1);
            return Spent::Yes(lease.count(true));
        }
        Spent::No(Arc::clone(&lease.turn))
    }

    /// Marks the request as spent from the lease and returns what the store must add: the
    /// shortfall, and the share to lease beyond it (none once the window is tight).
    fn claim(&self, scope: &str, tokens: i64, limits: RateLimits) -> (Pair, Pair) {
        self.with_lease(scope, |lease| {
            let need = lease.shortfall(tokens, limits);
            lease.spend(tokens, 1);
            if lease.tight {
                return (need, (0, 0));
            }
            let share = |limit: Option<i64>, need: i64| {
                limit.map_or(0, |limit| {
                    let share = (limit as f64 * self.fraction) as i64;
                    share.min(limit - need).max(0)
                })
            };
            (
                need,
                (share(limits.requests, need.0), share(limits.tokens, need.1)),
            )
        })
        .unwrap_or(((1, tokens), (0, 0)))
    }

    async fn ask_store(
        &self,
        scope: &str,
        window_start: i64,
        need: Pair,
        extra: Pair,
        limits: RateLimits,
    ) -> Result<WindowCount, StoreError> {
        let (max_requests, max_tokens) = limits.for_store();
        if need.0 > max_requests || need.1 > max_tokens {
            // Refused without asking: a new window's row would take it unchecked.
            let seen = self
                .with_lease(scope, |lease| lease.seen)
                .unwrap_or_default();
            return Ok(WindowCount {
                admitted: false,
                requests: seen.0,
                tokens: seen.1,
            });
        }
        let add = (need.0 + extra.0, need.1 + extra.1);
        let count = self
            .counters
            .take_window(
                scope,
                window_start,
                self.window_secs,
                add,
                limits.for_store(),
            )
            .await?;
        if count.admitted {
            self.with_lease(scope, |lease| {
                if lease.window_start == window_start {
                    lease.taken.0 += add.0;
                    lease.taken.1 += add.1;
                }
            });
        }
        Ok(count)
    }

    /// Takes a request that was admitted but then refused (by a budget) back out of the window.
    pub async fn give_back(&self, scope: &str, window_start: i64, tokens: i64) {
        if self.leased(scope, window_start, |lease| lease.spend(tokens, -1)) {
            return;
        }
        let _ = self
            .counters
            .adjust_window(scope, window_start, -1, -tokens)
            .await;
    }

    /// Corrects the window by a finished request's real usage less its estimate. Returns what
    /// must still be added to the store: all of it without a lease, only usage past the lease
    /// with one.
    pub fn settle(&self, scope: &str, window_start: i64, tokens: i64) -> Option<i64> {
        let mut excess = Some(tokens);
        let leased = self.leased(scope, window_start, |lease| {
            lease.used.1 += tokens;
            let over = lease.used.1 - lease.taken.1;
            excess = (over > 0 && lease.counts_tokens).then(|| {
                lease.taken.1 += over;
                over
            });
        });
        if leased {
            excess
        } else {
            Some(tokens)
        }
    }

    /// Runs `change` on the scope's lease when it is for `window_start`; false otherwise.
    fn leased(&self, scope: &str, window_start: i64, change: impl FnOnce(&mut Lease)) -> bool {
        if self.fraction <= 0.0 {
            return false;
        }
        self.with_lease(scope, |lease| {
            let current = lease.window_start == window_start;
            if current {
                change(lease);
            }
            current
        })
        .unwrap_or(false)
    }

    fn with_lease<T>(&self, scope: &str, f: impl FnOnce(&mut Lease) -> T) -> Option<T> {
        lock(&self.leases).get_mut(scope).map(f)
    }
}

enum Spent {
    Yes(WindowCount),
    No(Arc<tokio::sync::Mutex<()>>),
    /// No lease applies: the request goes to the store as itself.
    Direct,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
