//! Upstream URLs, parsed once per path: parsing one for every call (its IDNA host check
//! included) cost more than signing the call.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use url::Url;

use crate::error::{ApiError, ApiResult};

pub(super) struct Endpoints {
    base: String,
    /// Paths the gateway names as literals; a path with an id in it is parsed each time.
    parsed: RwLock<HashMap<&'static str, Url>>,
}

impl Endpoints {
    pub(super) fn new(base: String) -> Self {
        Self {
            base,
            parsed: RwLock::default(),
        }
    }

    /// The URL of a fixed path under the base.
    pub(super) fn url(&self, path: &'static str) -> ApiResult<Url> {
        let cached = self
            .parsed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned();
        if let Some(url) = cached {
            return Ok(url);
        }
        let url = self.parse(path)?;
        self.parsed
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path, url.clone());
        Ok(url)
    }

    /// The URL of any path under the base (one with an id in it, a query).
    pub(super) fn parse(&self, path: &str) -> ApiResult<Url> {
        Url::parse(&format!("{}{path}", self.base)).map_err(|error| ApiError::internal(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoints;

    #[test]
    fn a_cached_path_and_a_parsed_one_are_the_same_url() {
        let endpoints = Endpoints::new("http://127.0.0.1:9/api/paas/v4".into());
        let first = endpoints.url("/chat/completions").unwrap();
        let again = endpoints.url("/chat/completions").unwrap();
        assert_eq!(first, again);
        assert_eq!(first, endpoints.parse("/chat/completions").unwrap());
        assert_eq!(
            first.as_str(),
            "http://127.0.0.1:9/api/paas/v4/chat/completions"
        );
    }
}
