//! Every key held in memory, reloaded from the database in the background, so that
//! authenticating a request never waits on the database and keeps working while it is down. A
//! well-formed id missing from memory is looked up once (see `lookup`), so a key created by
//! another process works at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::lookup::MissLookups;
use super::{parse, ApiKey};
use crate::error::{ApiError, ErrorCode};
use crate::store::Db;
use crate::telemetry::ClientText;

/// A snapshot of all keys by id. Reloads replace it whole; a reload that fails keeps the last
/// good snapshot, so a database outage does not lock anyone out. `default()` has no database
/// to look missing keys up in.
pub struct KeyCache {
    keys: ArcSwap<HashMap<String, Arc<ApiKey>>>,
    /// Unix ms of the last successful reload; 0 before the first.
    last_reload_ms: AtomicI64,
    /// Keys this process created or revoked lately. A reload whose query began before such a
    /// change may not see it, so the change is applied again on top of that reload's result.
    recent: Mutex<Vec<(Instant, Arc<ApiKey>)>>,
    misses: MissLookups,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::build(None)
    }
}

/// Local changes older than this are surely in the database result of any later reload.
const RECENT_WINDOW: Duration = Duration::from_secs(10);

impl KeyCache {
    /// An empty cache that looks keys it does not hold up in `db`.
    pub fn new(db: Db) -> Self {
        Self::build(Some(db))
    }

    fn build(db: Option<Db>) -> Self {
        Self {
            keys: ArcSwap::default(),
            last_reload_ms: AtomicI64::new(0),
            recent: Mutex::default(),
            misses: MissLookups::new(db),
        }
    }

    pub async fn reload(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let started = Instant::now();
        let records = db.list_keys().await?;
        let mut keys: HashMap<_, _> = records
            .iter()
            .filter_map(|record| {
                let key = ApiKey::from_record(record);
                if key.is_none() {
                    tracing::warn!(key_id = ?ClientText(&record.id), "skipping an api_keys row that cannot be read");
                }
                key.map(|key| (key.id.clone(), Arc::new(key)))
            })
            .collect();
        let count = keys.len();
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.retain(|(at, _)| at.elapsed() < RECENT_WINDOW);
        for (_, key) in recent.iter().filter(|(at, _)| *at >= started) {
            keys.insert(key.id.clone(), Arc::clone(key));
        }
        self.keys.store(Arc::new(keys));
        drop(recent);
        self.last_reload_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        Ok(count)
    }

    /// Reloads every `every` until `cancel` fires.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        db: Db,
        every: Duration,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) {
        let cache = Arc::clone(self);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                match cache.reload(&db).await {
                    Ok(_) if failing => {
                        tracing::info!("key reload works again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(error) if !failing => {
                        tracing::warn!(%error, "key reload failed; serving from the cached keys");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Makes a key created or revoked by this process take effect at once, before the next
    /// reload.
    pub fn insert(&self, key: ApiKey) {
        let key = Arc::new(key);
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.push((Instant::now(), Arc::clone(&key)));
        self.keys.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(key.id.clone(), Arc::clone(&key));
            next
        });
    }

    /// Judges a presented key. Unknown ids and wrong secrets get the same answer, so the error
    /// does not reveal which ids exist.
    pub async fn authenticate(&self, presented: &str) -> Result<Arc<ApiKey>, ApiError> {
        let incorrect = || {
            ApiError::new(
                ErrorCode::InvalidApiKey,
                "Incorrect API key provided. Keys look like sk-glm-<id>-<secret>.",
            )
        };
        let (id, secret) = parse(presented).ok_or_else(incorrect)?;
        let cached = self.keys.load().get(id).cloned();
        let key = match cached {
            Some(key) => key,
            None => self.look_up(id).await.ok_or_else(incorrect)?,
        };
        if !key.secret_matches(secret) {
            return Err(incorrect());
        }
        if key.revoked_at.is_some() {
            return Err(ApiError::new(
                ErrorCode::ApiKeyRevoked,
                "This API key has been revoked.",
            ));
        }
        if key.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(ApiError::new(
                ErrorCode::ApiKeyExpired,
                "This API key has expired.",
            ));
        }
        Ok(key)
    }

    /// A key missing from the snapshot, from the database; one query per id at a time, and
    /// what it finds goes into the snapshot before later requests stop waiting on it.
    async fn look_up(&self, id: &str) -> Option<Arc<ApiKey>> {
        let flight = self.misses.join(id)?;
        let found = flight
            .get_or_init(|| async {
                let found = self.misses.query(id).await;
                if let Some(key) = &found {
                    self.keys.rcu(|current| {
                        let mut next = HashMap::clone(current);
                        next.insert(key.id.clone(), Arc::clone(key));
                        next
                    });
                }
                found
            })
            .await
            .clone();
        self.misses.land(id, &flight);
        found
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Milliseconds since the last successful reload, `None` before the first.
    pub fn staleness_ms(&self) -> Option<i64> {
        let last = self.last_reload_ms.load(Ordering::Relaxed);
        (last > 0).then(|| Utc::now().timestamp_millis() - last)
    }
}
