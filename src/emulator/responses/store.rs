//! Responses created with `store: true`: the response, its input items, and the whole
//! conversation up to it (for `previous_response_id`). Bounded; the oldest are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

const CAPACITY: usize = 1000;

#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub response: Value,
    pub input: Vec<Value>,
    /// Every item of the chain: earlier turns, this input, this output.
    pub history: Vec<Value>,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Stored>,
    order: VecDeque<String>,
}

impl Store {
    pub(crate) fn put(&self, id: String, stored: Stored) {
        let mut inner = self.lock();
        if inner.by_id.insert(id.clone(), stored).is_none() {
            inner.order.push_back(id);
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.by_id.remove(&old);
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Stored> {
        self.lock().by_id.get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &str) -> bool {
        let mut inner = self.lock();
        inner.order.retain(|o| o != id);
        inner.by_id.remove(id).is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
