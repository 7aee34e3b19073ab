//! The upstream keys and their health: calls go round-robin over the keys that are usable. A
//! key Zhipu rate-limits or finds overloaded (1302, 1303, 1305) cools down for a few seconds;
//! a key Zhipu rejects (HTTP 401, 1000–1004) or that has no balance left (1113) is taken out
//! for ten minutes, then tried again (a key may be fixed or topped up meanwhile).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use serde_json::Value;

use crate::json_path::At;

use super::Credential;

/// How long a key Zhipu rejected stays out.
const REMOVED_MS: i64 = 10 * 60 * 1000;

pub struct KeyPool {
    keys: Vec<(Credential, AtomicI64)>,
    /// Whether a key's time out of use is a removal (not a cool-down).
    removed: Vec<AtomicBool>,
    next: AtomicUsize,
}

/// A key's state, as `/readyz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Ok,
    Cooling,
    Out,
}

/// One key as `/readyz` and `/metrics` show it: its id (never its secret), its state and until
/// when (Unix ms; 0 when usable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub id: String,
    pub state: KeyState,
    pub until_ms: i64,
}

/// What an upstream answer says about the key that was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVerdict {
    Fine,
    /// Out of use for this many milliseconds.
    Cool(i64),
    Remove,
}

impl KeyPool {
    pub fn new(credentials: Vec<Credential>) -> Self {
        let mut pool = Self {
            keys: credentials
                .into_iter()
                .map(|credential| (credential, AtomicI64::new(0)))
                .collect(),
            removed: Vec::new(),
            next: AtomicUsize::new(0),
        };
        pool.removed = pool.keys.iter().map(|_| AtomicBool::new(false)).collect();
        pool
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key at `index`.
    pub fn credential(&self, index: usize) -> Option<&Credential> {
        self.keys.get(index).map(|(credential, _)| credential)
    }

    /// For a retry: the next usable key in turn that is not in `tried`; failing that, when
    /// `same_key_ok`, the next usable key in turn even if tried. `None`: no key to retry on.
    pub fn pick_other(
        &self,
        now_ms: i64,
        tried: &[usize],
        same_key_ok: bool,
    ) -> Option<(usize, &Credential)> {
        let count = self.keys.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let usable = |index: &usize| self.keys[*index].1.load(Ordering::Relaxed) <= now_ms;
        let order = || (0..count).map(|offset| (start + offset) % count);
        let index = order()
            .filter(usable)
            .find(|index| !tried.contains(index))
            .or_else(|| same_key_ok.then(|| order().find(usable)).flatten())?;
        Some((index, &self.keys[index].0))
    }

    /// Every key's id and state at `now_ms`.
    pub fn statuses(&self, now_ms: i64) -> Vec<KeyStatus> {
        self.keys
            .iter()
            .zip(&self.removed)
            .map(|((credential, until), removed)| {
                let until_ms = until.load(Ordering::Relaxed);
                let state = if until_ms <= now_ms {
                    KeyState::Ok
                } else if removed.load(Ordering::Relaxed) {
                    KeyState::Out
                } else {
                    KeyState::Cooling
                };
                KeyStatus {
                    id: credential.id().to_owned(),
                    state,
                    until_ms: if state == KeyState::Ok { 0 } else { until_ms },
                }
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The next usable key in turn, with its index; when every key is out, the one back
    /// soonest (a call with it beats refusing every request).
    pub fn pick(&self, now_ms: i64) -> Option<(usize, &Credential)> {
        let count = self.keys.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let usable = (0..count)
            .map(|offset| (start + offset) % count)
            .find(|index| self.keys[*index].1.load(Ordering::Relaxed) <= now_ms);
        let index = usable.unwrap_or_else(|| {
            (0..count)
                .min_by_key(|index| self.keys[*index].1.load(Ordering::Relaxed))
                .unwrap_or(0)
        });
        Some((index, &self.keys[index].0))
    }

    /// Notes what an answer said about key `index`.
    pub fn report(&self, index: usize, verdict: KeyVerdict, now_ms: i64) {
        let Some((_, until)) = self.keys.get(index) else {
            return;
        };
        let out_for = match verdict {
            KeyVerdict::Fine => return,
            KeyVerdict::Cool(ms) => ms,
            KeyVerdict::Remove => REMOVED_MS,
        };
        let previous = until.fetch_max(now_ms + out_for, Ordering::Relaxed);
        if let Some(removed) = self.removed.get(index) {
            if verdict == KeyVerdict::Remove {
                removed.store(true, Ordering::Relaxed);
            } else if previous <= now_ms {
                removed.store(false, Ordering::Relaxed);
            }
        }
        if previous <= now_ms {
            metrics::counter!("glm_gateway_upstream_key_benched_total").increment(1);
            if verdict == KeyVerdict::Remove {
                tracing::error!(
                    key = index,
                    "Zhipu rejected an upstream key; it is out for ten minutes"
                );
            } else {
                tracing::warn!(
                    key = index,
                    ms = out_for,
                    "an upstream key is rate-limited; cooling it down"
                );
            }
        }
    }

    /// Keys usable now.
    pub fn usable(&self, now_ms: i64) -> usize {
        self.keys
            .iter()
            .filter(|(_, until)| until.load(Ordering::Relaxed) <= now_ms)
            .count()
    }
}

/// Judges the key from an upstream error answer: its HTTP status and body.
pub fn verdict(status: u16, body: &[u8]) -> KeyVerdict {
    if status == 401 {
        return KeyVerdict::Remove;
    }
    match zhipu_code(body) {
        Some(1000..=1004 | 1113) => KeyVerdict::Remove,
        Some(1302) => KeyVerdict::Cool(1_000),
        Some(1303 | 1305) => KeyVerdict::Cool(5_000),
        _ => KeyVerdict::Fine,
    }
}

/// The business code of a Zhipu error body (`{"error":{"code":"1302",…}}`), if any.
pub fn zhipu_code(body: &[u8]) -> Option<u32> {
    let body = serde_json::from_slice::<Value>(body).ok()?;
    match body.at("/error/code") {
        Some(Value::String(code)) => code.trim().parse::<u32>().ok(),
        Some(Value::Number(code)) => code.as_u64().and_then(|c| u32::try_from(c).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMode, Secret};

    fn pool(n: usize) -> KeyPool {
        KeyPool::new(
            (0..n)
                .map(|i| Credential::new(&Secret::new(format!("id{i}.secret")), AuthMode::Bearer))
                .collect(),
        )
    }

    fn picks(pool: &KeyPool, now_ms: i64, n: usize) -> Vec<usize> {
        (0..n).map(|_| pool.pick(now_ms).unwrap().0).collect()
    }

    #[test]
    fn verdicts_follow_zhipu_codes() {
        assert_eq!(verdict(401, b""), KeyVerdict::Remove);
        assert_eq!(
            verdict(429, br#"{"error":{"code":"1113","message":"x"}}"#),
            KeyVerdict::Remove
        );
        assert_eq!(
            verdict(429, br#"{"error":{"code":"1302"}}"#),
            KeyVerdict::Cool(1_000)
        );
        assert_eq!(
            verdict(429, br#"{"error":{"code":1303}}"#),
            KeyVerdict::Cool(5_000)
        );
        assert_eq!(
            verdict(503, br#"{"error":{"code":"1305"}}"#),
            KeyVerdict::Cool(5_000)
        );
        assert_eq!(
            verdict(400, br#"{"error":{"code":"1214"}}"#),
            KeyVerdict::Fine
        );
        assert_eq!(verdict(500, b"<html>"), KeyVerdict::Fine);
    }

    #[test]
    fn a_cooling_key_is_skipped_until_it_is_back() {
        let pool = pool(2);
        assert_eq!(picks(&pool, 0, 4), vec![0, 1, 0, 1]);
        pool.report(0, KeyVerdict::Cool(1_000), 0);
        assert_eq!(picks(&pool, 500, 3), vec![1, 1, 1]);
        assert_eq!(pool.usable(500), 1);
        let back: Vec<usize> = picks(&pool, 1_000, 4);
        assert!(back.contains(&0) && back.contains(&1), "{back:?}");
    }

    #[test]
    fn a_removed_key_stays_out_and_the_last_resort_is_the_one_back_soonest() {
        let pool = pool(2);
        pool.report(1, KeyVerdict::Remove, 0);
        assert_eq!(picks(&pool, 60_000, 3), vec![0, 0, 0]);
        pool.report(0, KeyVerdict::Cool(5_000), 60_000);
        assert_eq!(pool.pick(61_000).unwrap().0, 0);
        assert_eq!(pool.usable(61_000), 0);
        assert_eq!(pool.pick(REMOVED_MS + 1).unwrap().0, 0);
        pool.report(0, KeyVerdict::Fine, 0);
    }

    #[test]
    fn a_retry_takes_another_usable_key_and_the_same_one_only_when_allowed() {
        let pool = pool(3);
        pool.report(2, KeyVerdict::Cool(1_000), 0);
        for _ in 0..4 {
            assert_eq!(pool.pick_other(10, &[0], false).unwrap().0, 1);
        }
        assert!(pool.pick_other(10, &[0, 1], false).is_none());
        let same = pool.pick_other(10, &[0, 1], true).unwrap().0;
        assert!(same == 0 || same == 1, "{same}");
        assert_eq!(pool.pick_other(1_000, &[0, 1], false).unwrap().0, 2);
    }

    #[test]
    fn statuses_name_the_key_and_tell_cooling_from_out() {
        let pool = pool(3);
        pool.report(1, KeyVerdict::Cool(1_000), 0);
        pool.report(2, KeyVerdict::Remove, 0);
        let states: Vec<(String, KeyState, i64)> = pool
            .statuses(10)
            .into_iter()
            .map(|s| (s.id, s.state, s.until_ms))
            .collect();
        assert_eq!(
            states,
            vec![
                ("id0".to_owned(), KeyState::Ok, 0),
                ("id1".to_owned(), KeyState::Cooling, 1_000),
                ("id2".to_owned(), KeyState::Out, REMOVED_MS),
            ]
        );
        assert_eq!(pool.statuses(REMOVED_MS)[2].state, KeyState::Ok);
    }
}
