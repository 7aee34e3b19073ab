//! The emulator's shared state: configured keys, the bounded log of received requests, the
//! bounded set of request ids already used and the images generated recently.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::auth::ApiKey;
use super::responses::Store as ResponseStore;
use super::RecordedRequest;

/// The log keeps only the most recent requests.
const LOG_CAPACITY: usize = 1000;
/// Request ids are remembered this far back; older ones may be reused.
const SEEN_IDS_CAPACITY: usize = 10_000;
/// Only the most recent images can be downloaded; older URLs answer 404.
const IMAGES_CAPACITY: usize = 1000;

#[derive(Debug)]
pub(crate) struct Shared {
    pub keys: Vec<ApiKey>,
    pub chunk_delay: Duration,
    log: Mutex<RequestLog>,
    seen_ids: Mutex<SeenIds>,
    images: Mutex<VecDeque<(String, StoredImage)>>,
    /// Message texts whose `#once` faults already struck.
    once: Mutex<SeenIds>,
    /// Responses created with `store: true` on the Response API.
    pub responses: ResponseStore,
}

/// How to render one generated image when it is downloaded. Kept instead of the bytes so a
/// thousand `#big-image` files do not hold 12 GB of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredImage {
    pub rgb: [u8; 3],
    pub big: bool,
    pub delay: Option<Duration>,
}

#[derive(Debug, Default)]
struct RequestLog {
    entries: VecDeque<RecordedRequest>,
    total: usize,
}

#[derive(Debug, Default)]
struct SeenIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Shared {
    pub(crate) fn new(api_keys: &[String], chunk_delay: Duration) -> Self {
        Self {
            keys: api_keys.iter().map(|k| ApiKey::parse(k)).collect(),
            chunk_delay,
            log: Mutex::default(),
            seen_ids: Mutex::default(),
            images: Mutex::default(),
            once: Mutex::default(),
            responses: ResponseStore::default(),
        }
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut log = lock(&self.log);
        if log.entries.len() == LOG_CAPACITY {
            log.entries.pop_front();
        }
        log.entries.push_back(request);
        log.total += 1;
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).entries.iter().cloned().collect()
    }

    pub(crate) fn request_count(&self) -> usize {
        lock(&self.log).total
    }

    /// Remembers `id`; false when it was already seen (Zhipu's 1231).
    pub(crate) fn remember_request_id(&self, id: &str) -> bool {
        remember(&mut lock(&self.seen_ids), id)
    }

    /// Remembers a `#once` message text; false when it was already seen.
    pub(crate) fn first_time(&self, text: &str) -> bool {
        remember(&mut lock(&self.once), text)
    }
}

/// Adds `id` to a bounded set; false when it was already there.
fn remember(seen: &mut SeenIds, id: &str) -> bool {
    if !seen.set.insert(id.to_owned()) {
        return false;
    }
    seen.order.push_back(id.to_owned());
    if seen.order.len() > SEEN_IDS_CAPACITY {
        if let Some(old) = seen.order.pop_front() {
            seen.set.remove(&old);
        }
    }
    true
}

impl Shared {
    /// Keeps `image` under the file name `name`, forgetting the oldest beyond the capacity.
    pub(crate) fn store_image(&self, name: String, image: StoredImage) {
        let mut images = lock(&self.images);
        if images.len() == IMAGES_CAPACITY {
            images.pop_front();
        }
        images.push_back((name, image));
    }

    pub(crate) fn image(&self, name: &str) -> Option<StoredImage> {
        lock(&self.images)
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, image)| *image)
    }
}

/// A panic while holding these locks cannot leave them half-updated, so poison is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
