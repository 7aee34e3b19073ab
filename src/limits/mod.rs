//! Per-key and per-team limits: `rpm` and `tpm` over a fixed window, and token and cost budgets
//! per UTC period. `admit` reserves a request's estimate atomically in a shared store before it
//! goes upstream and hands back a `Reservation`; whoever writes the request's ledger row
//! settles it, once, to the real usage. A reservation never settled stops counting when it
//! expires.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use tokio_util::task::TaskTracker;

use crate::catalogue::PriceBook;
use crate::config::{LimitStore, LimitsConfig};
use crate::domain::{Claim, Hold, TokenCounts, TokenUsage};
use crate::error::ApiError;
use crate::keys::ApiKey;
use crate::store::Db;

pub mod admin;
mod counters;
mod headers;
mod lease;
mod redis;
mod reservation;
mod upkeep;

pub use counters::StoreError;
pub use headers::{Admission, RateHeaders};
pub use reservation::Reservation;

pub use crate::domain::{BudgetPeriod, Estimate, TeamBudget};

use counters::Counters;
use lease::{RateLimits, Windows};

pub struct Limiter {
    config: LimitsConfig,
    counters: Arc<Counters>,
    /// The rate windows, spent through this replica's leases.
    windows: Arc<Windows>,
    /// Prices estimates for the cost budgets.
    prices: PriceBook,
    teams: ArcSwap<HashMap<String, TeamBudget>>,
    /// Team changes made through this process lately, applied again over a reload whose query
    /// may have begun before them.
    recent_teams: Mutex<Vec<(tokio::time::Instant, String, TeamBudget)>>,
    /// Set while the store fails, so an outage is logged once.
    failing: AtomicBool,
    /// Settlements under way; awaited at shutdown.
    settling: TaskTracker,
}

impl Limiter {
    pub fn new(config: &LimitsConfig, db: &Db, prices: PriceBook) -> anyhow::Result<Self> {
        let counters = match config.store {
            LimitStore::Database => Counters::database(db.counters_pool()),
            LimitStore::Memory => Counters::Memory(Mutex::default()),
            LimitStore::Redis => Counters::Redis(Box::new(redis::RedisCounters::new(
                config.redis_url.as_deref().unwrap_or_default(),
            )?)),
        };
        let counters = Arc::new(counters);
        // The memory store is this process already: a lease would only add bookkeeping.
        let lease_fraction = match config.store {
            LimitStore::Memory => 0.0,
            LimitStore::Database | LimitStore::Redis => config.lease_fraction,
        };
        let window_secs = i64::try_from(config.window.as_secs()).unwrap_or(60);
        Ok(Self {
            config: config.clone(),
            windows: Arc::new(Windows::new(
                Arc::clone(&counters),
                window_secs,
                lease_fraction,
            )),
            counters,
            prices,
            teams: ArcSwap::default(),
            recent_teams: Mutex::default(),
            failing: AtomicBool::new(false),
            settling: TaskTracker::new(),
        })
    }

    /// The estimate of a request: its prompt (about three characters a token) plus what it may
    /// generate (`max_tokens`, else `limits.default_max_tokens`) and its images, priced by the
    /// catalogue as its row will be.
    pub fn estimate(
        &self,
        model: &str,
        prompt_chars: usize,
        completion: Option<i64>,
        images: i64,
    ) -> Estimate {
        let prompt = TokenUsage::estimate(prompt_chars);
        let completion = completion
            .filter(|n| *n >= 0)
            .unwrap_or(self.config.default_max_tokens);
        let counts = TokenCounts {
            prompt,
            cached: 0,
            completion,
            images,
        };
        Estimate {
            tokens: prompt.saturating_add(completion),
            cost: self
                .prices
                .cost(model, Utc::now(), &counts)
                .and_then(|cost| cost.to_f64()),
        }
    }

    /// Checks the key's rate windows and reserves the estimate against the key's and the
    /// team's budgets; a refusal is a 429 that carries its `x-ratelimit-*` headers. The
    /// reservation (`None` when nothing was held) is settled by the request's ledger row.
    pub async fn admit(
        &self,
        request_id: &str,
        key: &ApiKey,
        estimate: Estimate,
    ) -> Result<(Admission, Option<Reservation>), ApiError> {
        self.admit_at(request_id, key, estimate, Utc::now()).await
    }

    /// `admit` at a given time, for tests of periods and windows.
    pub async fn admit_at(
        &self,
        request_id: &str,
        key: &ApiKey,
        estimate: Estimate,
        now: DateTime<Utc>,
    ) -> Result<(Admission, Option<Reservation>), ApiError> {
        if !self.config.enabled {
            return Ok((Admission::default(), None));
        }
        let mut admission = Admission::default();
        let window = self
            .take_window(key, estimate, now)
            .await?
            .map(|(window, rate)| {
                admission.rate = Some(rate);
                window
            });
        let mut claims = self.claims(key, now);
        if !claims.is_empty() {
            let hold = Hold {
                request_id,
                tokens: estimate.tokens,
                cost: estimate.cost.unwrap_or(0.0),
                now_ms: now.timestamp_millis(),
                expires_ms: now.timestamp_millis()
                    + i64::try_from(self.config.reservation_ttl.as_millis())
                        .unwrap_or(i64::MAX / 2),
            };
            match self.counters.reserve(&claims, hold).await {
                Ok(None) => self.store_works(),
                Ok(Some(refusal)) => {
                    self.store_works();
                    self.give_back(window.as_ref(), estimate).await;
                    let mut error = headers::budget_refusal(&claims[refusal.claim], refusal, now);
                    admission.apply_headers(error.headers_mut());
                    return Err(error);
                }
                Err(error) => {
                    if let Err(refusal) = self.store_failed(&error) {
                        self.give_back(window.as_ref(), estimate).await;
                        return Err(refusal);
                    }
                    // Served unchecked: nothing is held, so nothing is settled.
                    claims.clear();
                }
            }
        }
        let reservation = (window.is_some() || !claims.is_empty()).then(|| Reservation {
            request_id: request_id.to_owned(),
            window,
            claims,
            tokens: estimate.tokens,
            windows: Arc::clone(&self.windows),
            counters: Arc::clone(&self.counters),
            settling: self.settling.clone(),
        });
        Ok((admission, reservation))
    }

    /// Takes a refused request back out of the rate window it was counted in.
    async fn give_back(&self, window: Option<&(String, i64)>, estimate: Estimate) {
        if let Some((scope, start)) = window {
            self.windows.give_back(scope, *start, estimate.tokens).await;
        }
    }

    /// The window the request was counted in and the headers to report; `None` when the key
    /// has no rate limits, or the store failed and the policy is open.
    async fn take_window(
        &self,
        key: &ApiKey,
        estimate: Estimate,
        now: DateTime<Utc>,
    ) -> Result<Option<((String, i64), RateHeaders)>, ApiError> {
        if !key.limits.has_rate_limits() {
            return Ok(None);
        }
        let window_secs = i64::try_from(self.config.window.as_secs()).unwrap_or(60);
        let now_ms = now.timestamp_millis();
        let start = now.timestamp() - now.timestamp().rem_euclid(window_secs);
        let reset_ms = (start + window_secs) * 1000 - now_ms;
        let scope = format!("key:{}", key.id);
        let limits = RateLimits {
            requests: key.limits.rpm,
            tokens: key.limits.tpm,
        };
        let count = match self
            .windows
            .take(&scope, start, estimate.tokens, limits)
            .await
        {
            Ok(count) => {
                self.store_works();
                count
            }
            Err(error) => return self.store_failed(&error).map(|()| None),
        };
        let rate = RateHeaders::new(key, count, reset_ms);
        if count.admitted {
            return Ok(Some(((scope, start), rate)));
        }
        let mut error = headers::rate_refusal(key, count, estimate.tokens, reset_ms);
        rate.apply(error.headers_mut());
        Err(error)
    }

    fn claims(&self, key: &ApiKey, now: DateTime<Utc>) -> Vec<Claim> {
        let mut claims = Vec::new();
        let limits = &key.limits;
        if limits.has_budget() {
            claims.push(Claim {
                scope: format!("key:{}", key.id),
                period_start: limits.budget_period.start(now),
                token_budget: limits.token_budget,
                cost_budget: limits.cost_budget,
                ttl_secs: limits.budget_period.counter_ttl_secs(),
            });
        }
        if let Some(team) = self.teams.load().get(&*key.team) {
            if team.token_budget.is_some() || team.cost_budget.is_some() {
                claims.push(Claim {
                    scope: format!("team:{}", key.team),
                    period_start: team.period.start(now),
                    token_budget: team.token_budget,
                    cost_budget: team.cost_budget,
                    ttl_secs: team.period.counter_ttl_secs(),
                });
            }
        }
        claims
    }

    /// Replaces the team budgets with those the database had when a reload began at `started`,
    /// keeping changes made through this process since.
    pub fn set_teams(&self, mut teams: HashMap<String, TeamBudget>, started: tokio::time::Instant) {
        let mut recent = lock(&self.recent_teams);
        recent.retain(|(at, _, _)| at.elapsed() < std::time::Duration::from_secs(10));
        for (_, team, budget) in recent.iter().filter(|(at, _, _)| *at >= started) {
            teams.insert(team.clone(), *budget);
        }
        self.teams.store(Arc::new(teams));
    }

    /// Applies a team's new budgets at once, after a change made through this process.
    pub fn set_team(&self, team: &str, budget: TeamBudget) {
        let mut recent = lock(&self.recent_teams);
        recent.push((tokio::time::Instant::now(), team.to_owned(), budget));
        self.teams.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(team.to_owned(), budget);
            next
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
