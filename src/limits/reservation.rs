//! What an admitted request holds in the limits until its ledger row settles it: its place in
//! a rate window and its budget claims, at the estimate.

use std::sync::Arc;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tokio_util::task::TaskTracker;

use super::counters::Counters;
use super::lease::Windows;
use super::upkeep::settle_failed;
use crate::domain::Claim;

/// A request's hold on its key's window and its key's and team's budgets. `settle` books the
/// real usage and consumes it, so it happens at most once; dropped unsettled, its budget
/// claims stop counting when they expire in the store.
#[must_use = "a reservation is settled by the request's ledger row"]
pub struct Reservation {
    pub(super) request_id: String,
    pub(super) window: Option<(String, i64)>,
    pub(super) claims: Vec<Claim>,
    /// The estimate reserved.
    pub(super) tokens: i64,
    pub(super) windows: Arc<Windows>,
    pub(super) counters: Arc<Counters>,
    pub(super) settling: TaskTracker,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("request_id", &self.request_id)
            .field("window", &self.window)
            .field("claims", &self.claims.len())
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl Reservation {
    /// Books the request's real usage, its row's `total_tokens` and `cost` (no price counts
    /// as 0), in the background; the limiter's `drain` waits for it at shutdown.
    pub fn settle(self, tokens: i64, cost: Option<Decimal>) {
        let cost = cost.and_then(|c| c.to_f64()).unwrap_or(0.0);
        let window = self.window.as_ref().and_then(|(scope, start)| {
            let excess = self.windows.settle(scope, *start, tokens - self.tokens)?;
            Some((scope.clone(), *start, excess))
        });
        if window.is_none() && self.claims.is_empty() {
            return;
        }
        let Self {
            request_id,
            claims,
            counters,
            settling,
            ..
        } = self;
        settling.spawn(async move {
            if let Some((scope, start, excess)) = &window {
                if let Err(error) = counters.adjust_window(scope, *start, 0, *excess).await {
                    settle_failed(&error);
                }
            }
            if !claims.is_empty() {
                if let Err(error) = counters.settle(&request_id, &claims, tokens, cost).await {
                    settle_failed(&error);
                }
            }
        });
    }
}
