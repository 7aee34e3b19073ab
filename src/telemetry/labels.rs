//! Metric label values, few and cheap: every value is a `&'static str` or a shared `Arc<str>`
//! (`SharedString`), so labelling a request allocates no string. Client-given names become a
//! label only when the gateway knows them; anything else is `other`, which bounds the series.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use metrics::SharedString;

use crate::catalogue::Catalogue;
use crate::config::{Config, ModelMap};

/// The label of a name the gateway does not know, and of a request no route matched.
pub const OTHER: SharedString = SharedString::const_str("other");
pub const UNMATCHED: SharedString = SharedString::const_str("unmatched");
/// Alias and team of a request that has none (no key, or no model named).
pub const NONE: SharedString = SharedString::const_str("");

/// "000" … "599", so that a status becomes a label without formatting.
static STATUS_DIGITS: [[u8; 3]; 600] = status_digits();

const fn status_digits() -> [[u8; 3]; 600] {
    let mut table = [[b'0'; 3]; 600];
    let mut code = 0;
    while code < 600 {
        table[code] = [
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ];
        code += 1;
    }
    table
}

/// The status as its three digits ("other" past 599, which HTTP does not use).
pub fn status_label(status: u16) -> &'static str {
    STATUS_DIGITS
        .get(usize::from(status))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .unwrap_or("other")
}

/// Route templates (`/v1/models/{id}`) seen so far, shared. The router has a fixed set, so
/// this only grows to that size; a lookup is a lock-free load and a hash.
static ROUTES: LazyLock<ArcSwap<HashSet<SharedString>>> = LazyLock::new(ArcSwap::default);

/// The label of a matched route template, `unmatched` when no route matched.
pub fn route_label(template: Option<&str>) -> SharedString {
    let Some(template) = template else {
        return UNMATCHED;
    };
    if let Some(found) = ROUTES.load().get(template) {
        return found.clone();
    }
    let label = SharedString::from(Arc::<str>::from(template));
    ROUTES.rcu(|routes| {
        let mut routes = HashSet::clone(routes);
        routes.insert(label.clone());
        routes
    });
    label
}

/// Which model names become labels: the names the model map knows (its exact entries and the
/// common OpenAI ids), the GLM models it maps to, the `/v1/models` catalogue, the fallback
/// models and the models with a price. A name matching only a prefix entry is labelled with
/// that entry (`gpt-4o*`); any other name is `other`.
pub struct ModelLabels {
    known: HashSet<SharedString>,
    /// Prefix (without `*`) → its label (`prefix*`).
    prefixes: HashMap<Box<str>, SharedString>,
    models: ModelMap,
}

impl Default for ModelLabels {
    /// Knows no model: every name is `other`.
    fn default() -> Self {
        Self {
            known: HashSet::new(),
            prefixes: HashMap::new(),
            models: ModelMap::default(),
        }
    }
}

impl ModelLabels {
    pub fn new(config: &Config) -> Self {
        let models = &config.models;
        let catalogue = Catalogue::builtin();
        let configured_prices = config
            .prices
            .iter()
            .map(|p| p.model.as_str())
            .filter(|m| !m.ends_with('*'));
        let names = catalogue
            .common_openai_models()
            .iter()
            .map(String::as_str)
            .chain(models.exact_entries())
            .chain(models.targets())
            .chain(config.listed_models.iter().map(String::as_str))
            .chain(config.zhipu.fallbacks.iter().flat_map(|(model, then)| {
                std::iter::once(model.as_str()).chain(then.iter().map(String::as_str))
            }))
            .chain(catalogue.names())
            .chain(configured_prices);
        let known = names
            .map(|name| SharedString::from(Arc::<str>::from(name)))
            .collect();
        let prefixes = models
            .prefix_entries()
            .map(|prefix| {
                let label = Arc::<str>::from(format!("{prefix}*"));
                (Box::from(prefix), SharedString::from(label))
            })
            .collect();
        Self {
            known,
            prefixes,
            models: models.clone(),
        }
    }

    /// The label of the model name a client sent.
    pub fn alias(&self, requested: &str) -> SharedString {
        if let Some(known) = self.known.get(requested) {
            return known.clone();
        }
        self.models
            .prefix_entry(requested)
            .and_then(|prefix| self.prefixes.get(prefix))
            .cloned()
            .unwrap_or(OTHER)
    }

    /// The label of a GLM model sent upstream.
    pub fn model(&self, upstream: &str) -> SharedString {
        self.known.get(upstream).cloned().unwrap_or(OTHER)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn status_labels_are_the_three_digits() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(404), "404");
        assert_eq!(status_label(499), "499");
        assert_eq!(status_label(999), "other");
    }

    #[test]
    fn route_labels_are_shared_once_seen() {
        let first = route_label(Some("/v1/things/{id}"));
        let second = route_label(Some("/v1/things/{id}"));
        assert_eq!(&*first, "/v1/things/{id}");
        assert!(std::ptr::eq(first.as_ptr(), second.as_ptr()));
        assert_eq!(&*route_label(None), "unmatched");
    }

    #[test]
    fn unknown_model_names_are_other_and_prefix_matches_name_their_entry() {
        let toml = "[models]\n\"team-model*\" = \"glm-4.7\"\n";
        let config = Config::from_toml(toml, &|_| None).unwrap();
        let labels = ModelLabels::new(&config);
        assert_eq!(&*labels.alias("gpt-4o"), "gpt-4o");
        assert_eq!(&*labels.alias("gpt-4o-2024-08-06"), "gpt-4o*");
        assert_eq!(&*labels.alias("team-model-large"), "team-model*");
        assert_eq!(&*labels.alias("glm-4.7"), "glm-4.7");
        assert_eq!(&*labels.alias("glm-4-plus"), "glm-4-plus", "a priced model");
        assert_eq!(&*labels.alias("my\r\nown model 123"), "other");
        assert_eq!(&*labels.model("glm-4.7"), "glm-4.7");
        assert_eq!(&*labels.model("whatever-it-was"), "other");
        assert_eq!(&*ModelLabels::default().alias("gpt-4o"), "other");
    }
}
