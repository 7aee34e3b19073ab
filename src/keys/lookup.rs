//! Database look-ups for keys the in-memory snapshot does not hold yet, so that a key created by
//! another process works at once instead of after the next reload. Guarded so that presented
//! ids cannot hammer the database: one query in flight per id, a short memory of ids that were
//! not found, and a global bound on look-ups per second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::{ApiKey, ID_LEN};
use crate::store::Db;
use crate::telemetry::ClientText;

/// How long an id the database did not know is answered from memory.
const ABSENT_TTL: Duration = Duration::from_secs(1);
/// Look-ups per second, over all ids; also the burst allowed after a quiet spell.
const LOOKUPS_PER_SEC: f64 = 50.0;

/// The result every request waiting on one id's look-up shares.
pub(super) type Found = Option<Arc<ApiKey>>;

/// One id's look-up; whoever joins while it runs waits for the same result.
pub(super) type Flight = Arc<OnceCell<Found>>;

pub(super) struct MissLookups {
    db: Option<Db>,
    in_flight: Mutex<HashMap<String, Flight>>,
    /// Ids the database did not know, with when it said so.
    absent: Mutex<HashMap<String, Instant>>,
    bucket: Mutex<TokenBucket>,
}

impl MissLookups {
    /// Without a database no look-up is made: only the snapshot counts.
    pub(super) fn new(db: Option<Db>) -> Self {
        Self {
            db,
            in_flight: Mutex::default(),
            absent: Mutex::default(),
            bucket: Mutex::new(TokenBucket::new(LOOKUPS_PER_SEC, Instant::now())),
        }
    }

    /// The flight to wait on for `id`, joining one in progress; `None` when no look-up is to
    /// be made (no database, an id no key can have, or one just found absent).
    pub(super) fn join(&self, id: &str) -> Option<Flight> {
        self.db.as_ref()?;
        if !well_formed(id) {
            return None;
        }
        if lock(&self.absent)
            .get(id)
            .is_some_and(|at| at.elapsed() < ABSENT_TTL)
        {
            return None;
        }
        let mut flights = lock(&self.in_flight);
        Some(Arc::clone(flights.entry(id.to_owned()).or_default()))
    }

    /// Ends `flight` for later requests; the result must be in the snapshot (or in `absent`)
    /// by now, so they do not query again.
    pub(super) fn land(&self, id: &str, flight: &Flight) {
        let mut flights = lock(&self.in_flight);
        if flights.get(id).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(id);
        }
    }

    /// The one query for `id`. A refusal by the rate bound or a database error is not
    /// remembered as absent: the next request may try again.
    pub(super) async fn query(&self, id: &str) -> Found {
        let db = self.db.as_ref()?;
        if !lock(&self.bucket).take(Instant::now()) {
            metrics::counter!("glm_gateway_key_lookups_total", "outcome" => "throttled")
                .increment(1);
            return None;
        }
        match db.find_key(id).await {
            Ok(Some(record)) => {
                metrics::counter!("glm_gateway_key_lookups_total", "outcome" => "found")
                    .increment(1);
                let key = ApiKey::from_record(&record).map(Arc::new);
                if key.is_none() {
                    tracing::warn!(key_id = ?ClientText(id), "an api_keys row cannot be read");
                    self.remember_absent(id);
                }
                key
            }
            Ok(None) => {
                metrics::counter!("glm_gateway_key_lookups_total", "outcome" => "absent")
                    .increment(1);
                self.remember_absent(id);
                None
            }
            Err(error) => {
                tracing::warn!(%error, "cannot look up an API key missing from the cache");
                None
            }
        }
    }

    fn remember_absent(&self, id: &str) {
        let mut absent = lock(&self.absent);
        // The rate bound keeps this map small: at most about one second of look-ups.
        absent.retain(|_, at| at.elapsed() < ABSENT_TTL);
        absent.insert(id.to_owned(), Instant::now());
    }
}

/// Ids are what `generate` makes: `ID_LEN` lowercase letters and digits. Anything else is
/// refused without asking the database.
fn well_formed(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A plain token bucket: `rate` tokens a second, holding at most `rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(50.0, start);
        assert_eq!((0..60).filter(|_| bucket.take(start)).count(), 50);
        assert!(!bucket.take(start));
        let later = start + Duration::from_millis(100);
        assert_eq!((0..60).filter(|_| bucket.take(later)).count(), 5);
        let much_later = start + Duration::from_secs(10);
        assert_eq!((0..100).filter(|_| bucket.take(much_later)).count(), 50);
    }

    #[test]
    fn only_generated_looking_ids_are_looked_up() {
        assert!(well_formed("abcdefgh1234"));
        for bad in ["", "abc", "ABCDEFGH1234", "abcdefgh123!", "abcdefgh12345"] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn without_a_database_nothing_is_looked_up() {
        let lookups = MissLookups::new(None);
        assert!(lookups.join("abcdefgh1234").is_none());
    }

    #[tokio::test]
    async fn joiners_share_one_flight_until_it_lands() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let lookups = MissLookups::new(Some(db));
        let first = lookups.join("abcdefgh1234").unwrap();
        let second = lookups.join("abcdefgh1234").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        lookups.land("abcdefgh1234", &first);
        let third = lookups.join("abcdefgh1234").unwrap();
        assert!(!Arc::ptr_eq(&first, &third));
        lookups.remember_absent("abcdefgh1234");
        assert!(
            lookups.join("abcdefgh1234").is_none(),
            "absent ids are remembered"
        );
    }
}
