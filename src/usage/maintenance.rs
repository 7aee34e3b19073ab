//! Keeping `usage_events` in shape: daily partitions made ahead of time (Postgres) and
//! retention, which rolls old days up into `usage_rollups` before dropping their raw rows. The
//! same hourly upkeep deletes expired `response_owners` rows.

use std::time::Duration;

use chrono::{Days, Utc};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::Db;

const EVERY: Duration = Duration::from_secs(3600);

/// Runs now and then hourly until shutdown.
pub fn spawn(
    db: Db,
    retention_days: Option<u32>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => run_once(&db, retention_days).await,
            }
        }
    });
}

pub async fn run_once(db: &Db, retention_days: Option<u32>) {
    match db.purge_response_owners(Utc::now()).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "expired response owners removed"),
        Err(error) => tracing::warn!(%error, "cannot remove expired response owners"),
    }
    let today = Utc::now().date_naive();
    let (from, to) = (today - Days::new(1), today + Days::new(3));
    if let Err(error) = db.prepare_partitions(from, to).await {
        tracing::warn!(%error, "cannot prepare usage_events partitions");
    }
    let Some(days) = retention_days else { return };
    let cutoff = today - Days::new(u64::from(days));
    match db.apply_retention(cutoff).await {
        Ok(0) => {}
        Ok(removed) => {
            tracing::info!(removed, %cutoff, "usage rows before the cutoff rolled up and removed")
        }
        Err(error) => tracing::warn!(%error, "usage retention failed; will try again"),
    }
}
