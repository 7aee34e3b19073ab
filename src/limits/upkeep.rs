//! The limiter's background work (team budget reloads, counter cleaning, settlements at
//! shutdown) and its policy when the counter store cannot be reached.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{admin, Limiter, StoreError};
use crate::config::StoreErrorPolicy;
use crate::error::{ApiError, ErrorCode};
use crate::store::Db;

impl Limiter {
    /// Loads the team budgets, then reloads them every `every` and cleans old counters every
    /// minute, until `cancel`.
    pub async fn spawn_background(
        self: &Arc<Self>,
        db: Db,
        every: std::time::Duration,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) {
        let started = tokio::time::Instant::now();
        match admin::team_budgets(&db).await {
            Ok(teams) => self.set_teams(teams, started),
            Err(error) => {
                tracing::warn!(%error, "cannot load team budgets; retrying in the background")
            }
        }
        let limiter = Arc::clone(self);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_clean = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let started = tokio::time::Instant::now();
                match admin::team_budgets(&db).await {
                    Ok(teams) => limiter.set_teams(teams, started),
                    Err(error) => tracing::debug!(%error, "team budget reload failed"),
                }
                if last_clean.elapsed() >= std::time::Duration::from_secs(60) {
                    last_clean = tokio::time::Instant::now();
                    limiter.clean().await;
                }
            }
        });
    }

    async fn clean(&self) {
        let now = Utc::now();
        let window = i64::try_from(self.config.window.as_secs()).unwrap_or(60);
        if let Err(error) = self
            .counters
            .clean(now.timestamp() - 2 * window, now.timestamp_millis())
            .await
        {
            tracing::debug!(%error, "cleaning limit counters failed");
        }
    }

    /// Waits (a little) for settlements under way, at shutdown.
    pub async fn drain(&self) {
        self.settling.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.settling.wait()).await;
    }

    pub(super) fn store_works(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("the limit counter store works again");
        }
    }

    /// Counts a store failure; `Err` (503) when the policy is closed.
    pub(super) fn store_failed(&self, error: &StoreError) -> Result<(), ApiError> {
        metrics::counter!("glm_gateway_limits_store_errors_total").increment(1);
        let open = self.config.on_store_error == StoreErrorPolicy::Open;
        if !self.failing.swap(true, Ordering::Relaxed) {
            if open {
                tracing::warn!(%error, "the limit counter store fails; serving requests without limits (on_store_error = open)");
            } else {
                tracing::warn!(%error, "the limit counter store fails; refusing requests (on_store_error = closed)");
            }
        }
        if open {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::LimitsUnavailable,
                "The gateway cannot check this key's limits right now. Please try again.",
            )
            .retry_after(1))
        }
    }
}

pub(super) fn settle_failed(error: &StoreError) {
    metrics::counter!("glm_gateway_limits_store_errors_total").increment(1);
    tracing::warn!(%error, "cannot settle a request's usage in the limit counters; its reservation will expire");
}
