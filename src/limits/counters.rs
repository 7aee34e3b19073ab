//! Where counters live: the database (shared by every replica on Postgres), Redis, or this
//! process's memory. Each check-and-add is atomic in its store, so replicas cannot both take
//! the last unit of a limit.

use std::collections::HashMap;
use std::sync::Mutex;

use super::redis::RedisCounters;
use crate::domain::{fits, Claim, Hold, Refusal, WindowCount};
use crate::store::Db;

#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self(format!("database: {error}"))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        Self(format!("redis: {error}"))
    }
}

pub enum Counters {
    /// The gateway's database. SQLite is one process's file: its statements are serialized
    /// here, Postgres serializes them itself with row locks.
    Database {
        db: Db,
        sqlite_lock: tokio::sync::Mutex<()>,
    },
    Redis(Box<RedisCounters>),
    Memory(Mutex<Memory>),
}

impl Counters {
    pub fn database(db: Db) -> Self {
        Self::Database {
            db,
            sqlite_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds `add` (requests, tokens: one request, or a replica's lease) to a window unless
    /// that would pass a limit.
    pub async fn take_window(
        &self,
        scope: &str,
        window_start: i64,
        window_secs: i64,
        add: (i64, i64),
        limits: (i64, i64),
    ) -> Result<WindowCount, StoreError> {
        match self {
            Self::Database { db, sqlite_lock } => {
                let _serial = serial(db, sqlite_lock).await;
                Ok(db.take_window(scope, window_start, add, limits).await?)
            }
            Self::Redis(redis) => {
                redis
                    .take_window(scope, window_start, window_secs, add, limits)
                    .await
            }
            Self::Memory(memory) => Ok(lock(memory).take_window(scope, window_start, add, limits)),
        }
    }

    /// Changes a window's counts (a refused or settled request), if it still exists.
    pub async fn adjust_window(
        &self,
        scope: &str,
        window_start: i64,
        requests: i64,
        tokens: i64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Database { db, sqlite_lock } => {
                let _serial = serial(db, sqlite_lock).await;
                Ok(db
                    .adjust_window(scope, window_start, requests, tokens)
                    .await?)
            }
            Self::Redis(redis) => {
                redis
                    .adjust_window(scope, window_start, requests, tokens)
                    .await
            }
            Self::Memory(memory) => {
                if let Some(window) = lock(memory)
                    .windows
                    .get_mut(&(scope.to_owned(), window_start))
                {
                    window.0 += requests;
                    window.1 += tokens;
                }
                Ok(())
            }
        }
    }

    /// Holds the estimate against every claim, or against none if one does not fit.
    pub async fn reserve(
        &self,
        claims: &[Claim],
        hold: Hold<'_>,
    ) -> Result<Option<Refusal>, StoreError> {
        match self {
            Self::Database { db, sqlite_lock } => {
                let _serial = serial(db, sqlite_lock).await;
                Ok(db.reserve_budgets(claims, hold).await?)
            }
            Self::Redis(redis) => redis.reserve(claims, hold).await,
            Self::Memory(memory) => Ok(lock(memory).reserve(claims, hold)),
        }
    }

    /// Books real usage to each claim's period and drops the request's reservations.
    pub async fn settle(
        &self,
        request_id: &str,
        claims: &[Claim],
        tokens: i64,
        cost: f64,
    ) -> Result<(), StoreError> {
        match self {
            Self::Database { db, sqlite_lock } => {
                let _serial = serial(db, sqlite_lock).await;
                Ok(db.settle_budgets(request_id, claims, tokens, cost).await?)
            }
            Self::Redis(redis) => redis.settle(request_id, claims, tokens, cost).await,
            Self::Memory(memory) => {
                let mut memory = lock(memory);
                for claim in claims {
                    let budget = memory
                        .budgets
                        .entry((claim.scope.clone(), claim.period_start))
                        .or_default();
                    budget.spent_tokens += tokens;
                    budget.spent_cost += cost;
                    budget.held.remove(request_id);
                }
                Ok(())
            }
        }
    }

    /// Drops windows that ended before `windows_before` and reservations expired by `now_ms`.
    pub async fn clean(&self, windows_before: i64, now_ms: i64) -> Result<(), StoreError> {
        match self {
            Self::Database { db, sqlite_lock } => {
                let _serial = serial(db, sqlite_lock).await;
                Ok(db.clean_limits(windows_before, now_ms).await?)
            }
            // Redis expires its keys itself.
            Self::Redis(_) => Ok(()),
            Self::Memory(memory) => {
                let mut memory = lock(memory);
                memory
                    .windows
                    .retain(|(_, start), _| *start >= windows_before);
                for budget in memory.budgets.values_mut() {
                    budget.held.retain(|_, held| held.2 > now_ms);
                }
                Ok(())
            }
        }
    }
}

async fn serial<'a>(
    db: &Db,
    lock: &'a tokio::sync::Mutex<()>,
) -> Option<tokio::sync::MutexGuard<'a, ()>> {
    match db {
        Db::Sqlite(_) => Some(lock.lock().await),
        Db::Postgres(_) => None,
    }
}

fn lock(memory: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    memory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counters of one process only: for a single gateway, and for tests.
#[derive(Default)]
pub struct Memory {
    /// (scope, window start) → (requests, tokens).
    windows: HashMap<(String, i64), (i64, i64)>,
    budgets: HashMap<(String, i64), Budget>,
}

#[derive(Default)]
struct Budget {
    spent_tokens: i64,
    spent_cost: f64,
    /// request id → (tokens, cost, expires ms).
    held: HashMap<String, (i64, f64, i64)>,
}

impl Memory {
    fn take_window(
        &mut self,
        scope: &str,
        start: i64,
        (requests, tokens): (i64, i64),
        (max_requests, max_tokens): (i64, i64),
    ) -> WindowCount {
        let window = self.windows.entry((scope.to_owned(), start)).or_default();
        let admitted = window.0.saturating_add(requests) <= max_requests
            && window.1.saturating_add(tokens) <= max_tokens;
        if admitted {
            window.0 += requests;
            window.1 += tokens;
        }
        WindowCount {
            admitted,
            requests: window.0,
            tokens: window.1,
        }
    }

    fn reserve(&mut self, claims: &[Claim], hold: Hold<'_>) -> Option<Refusal> {
        for (index, claim) in claims.iter().enumerate() {
            let budget = self
                .budgets
                .entry((claim.scope.clone(), claim.period_start))
                .or_default();
            budget.held.retain(|_, held| held.2 > hold.now_ms);
            let held_tokens: i64 = budget.held.values().map(|h| h.0).sum();
            let held_cost: f64 = budget.held.values().map(|h| h.1).sum();
            if !fits(
                claim,
                budget.spent_tokens + held_tokens,
                budget.spent_cost + held_cost,
                hold.tokens,
                hold.cost,
            ) {
                return Some(Refusal {
                    claim: index,
                    spent_tokens: budget.spent_tokens,
                    spent_cost: budget.spent_cost,
                });
            }
        }
        for claim in claims {
            let budget = self
                .budgets
                .entry((claim.scope.clone(), claim.period_start))
                .or_default();
            budget.held.insert(
                hold.request_id.to_owned(),
                (hold.tokens, hold.cost, hold.expires_ms),
            );
        }
        None
    }
}
