//! The model map: names clients send mapped to GLM models sent upstream. The catalogue's map
//! of the common OpenAI names is the default; the `[models]` table overrides or extends it.

use std::collections::{BTreeMap, HashMap};

use crate::catalogue::Catalogue;

/// Configured entries are consulted first (exact, then longest prefix), then the built-in ones
/// (exact, then longest prefix); a name that matches nothing is sent upstream unchanged. So a
/// configured `gpt-4o*` also covers `gpt-4o-mini`, though a built-in `gpt-4o-mini*` is longer:
/// the operator's word beats the defaults.
#[derive(Debug, Clone)]
pub struct ModelMap {
    configured: AliasTable,
    builtin: AliasTable,
}

impl Default for ModelMap {
    /// The built-in map alone.
    fn default() -> Self {
        Self {
            configured: AliasTable::default(),
            builtin: builtin_table(),
        }
    }
}

/// One layer of the map.
#[derive(Debug, Clone, Default)]
struct AliasTable {
    exact: HashMap<String, String>,
    /// Sorted longest prefix first, so the first hit is the longest match.
    prefixes: Vec<(String, String)>,
}

impl AliasTable {
    fn new(entries: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let mut table = Self::default();
        for (name, target) in entries {
            if target.is_empty() || target.contains('*') {
                return Err(format!(
                    "`{name}` must map to a plain model name, not `{target}`"
                ));
            }
            match name.strip_suffix('*') {
                Some(prefix) if prefix.contains('*') => {
                    return Err(format!("`{name}`: `*` may only end a name"));
                }
                Some(prefix) => table.prefixes.push((prefix.to_owned(), target)),
                None if name.contains('*') => {
                    return Err(format!("`{name}`: `*` may only end a name"))
                }
                None => {
                    table.exact.insert(name, target);
                }
            }
        }
        table
            .prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(table)
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        if let Some(target) = self.exact.get(name) {
            return Some(target);
        }
        self.prefix_match(name).map(|(_, target)| target.as_str())
    }

    /// The longest prefix entry `name` starts with: (prefix, target).
    fn prefix_match(&self, name: &str) -> Option<&(String, String)> {
        self.prefixes
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()))
    }

    fn targets(&self) -> impl Iterator<Item = &str> {
        self.exact
            .values()
            .chain(self.prefixes.iter().map(|(_, t)| t))
            .map(String::as_str)
    }
}

/// The catalogue's map, to current (not retired) GLM models. Its entries are checked by a
/// unit test; a bad one would leave the table empty rather than stop the gateway.
fn builtin_table() -> AliasTable {
    AliasTable::new(Catalogue::builtin().aliases().iter().cloned()).unwrap_or_default()
}

impl ModelMap {
    /// The built-in map with `entries` (the `[models]` table) on top.
    pub fn new(entries: BTreeMap<String, String>) -> Result<Self, String> {
        Ok(Self {
            configured: AliasTable::new(entries)?,
            builtin: builtin_table(),
        })
    }

    /// The GLM model to send upstream for `name`.
    pub fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        self.configured
            .lookup(name)
            .or_else(|| self.builtin.lookup(name))
            .unwrap_or(name)
    }

    /// Whether some entry, configured or built in, maps `name`.
    pub fn maps(&self, name: &str) -> bool {
        self.configured.lookup(name).is_some() || self.builtin.lookup(name).is_some()
    }

    /// Exact names from the `[models]` table, for `/v1/models`.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.configured.exact.keys().map(String::as_str)
    }

    /// Every model an entry, configured or built in, points at.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.configured.targets().chain(self.builtin.targets())
    }

    /// Every exact name, configured or built in.
    pub fn exact_entries(&self) -> impl Iterator<Item = &str> {
        let tables = [&self.configured, &self.builtin];
        tables
            .into_iter()
            .flat_map(|table| table.exact.keys().map(String::as_str))
    }

    /// Every prefix entry, configured or built in, without its `*`.
    pub fn prefix_entries(&self) -> impl Iterator<Item = &str> {
        let tables = [&self.configured, &self.builtin];
        tables
            .into_iter()
            .flat_map(|table| table.prefixes.iter().map(|(prefix, _)| prefix.as_str()))
    }

    /// The prefix entry (without its `*`) that maps `name`, when no exact entry does.
    pub fn prefix_entry(&self, name: &str) -> Option<&str> {
        let tables = [&self.configured, &self.builtin];
        for table in tables {
            if table.exact.contains_key(name) {
                return None;
            }
            if let Some((prefix, _)) = table.prefix_match(name) {
                return Some(prefix);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> ModelMap {
        ModelMap::new(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn builtin_entries_are_well_formed() {
        let aliases = Catalogue::builtin().aliases();
        let table = AliasTable::new(aliases.iter().cloned()).unwrap();
        assert_eq!(table.exact.len() + table.prefixes.len(), aliases.len());
    }

    #[test]
    fn builtin_map_alone_covers_the_common_openai_names() {
        let models = ModelMap::default();
        for (name, target) in [
            ("gpt-4o", "glm-4.6v"),
            ("gpt-4o-mini", "glm-4.6v-flash"),
            ("gpt-4o-2024-08-06", "glm-4.6v"),
            ("gpt-4.1", "glm-4.7"),
            ("gpt-4.1-mini", "glm-4.7-flashx"),
            ("gpt-4.1-nano", "glm-4.7-flash"),
            ("gpt-5", "glm-5.1"),
            ("gpt-5-mini", "glm-4.7"),
            ("gpt-5-nano", "glm-4.7-flash"),
            ("gpt-4", "glm-4.7"),
            ("gpt-4-turbo", "glm-4.6v"),
            ("gpt-3.5-turbo-0125", "glm-4.7-flash"),
            ("o1", "glm-5.1"),
            ("o3", "glm-5.1"),
            ("o3-mini", "glm-5-turbo"),
            ("o4-mini", "glm-5-turbo"),
            ("chatgpt-4o-latest", "glm-4.6v"),
            ("text-embedding-ada-002", "embedding-3"),
            ("dall-e-3", "cogview-4-250304"),
            ("gpt-image-1", "cogview-4-250304"),
        ] {
            assert_eq!(models.resolve(name), target, "{name}");
        }
        for name in Catalogue::builtin().common_openai_models() {
            assert!(models.maps(name), "{name} should be mapped");
        }
        assert_eq!(models.resolve("glm-4.7"), "glm-4.7");
        assert!(!models.maps("glm-4.7"));
    }

    #[test]
    fn configured_entries_win_over_builtin_ones_even_when_shorter() {
        let models = map(&[("gpt-4o*", "glm-5v-turbo")]);
        assert_eq!(models.resolve("gpt-4o"), "glm-5v-turbo");
        assert_eq!(models.resolve("gpt-4o-mini"), "glm-5v-turbo");
        assert_eq!(
            models.resolve("gpt-4.1"),
            "glm-4.7",
            "built-in still applies"
        );
    }

    #[test]
    fn within_a_layer_exact_beats_prefix_and_the_longest_prefix_wins() {
        let models = map(&[
            ("gpt-4", "glm-4"),
            ("gpt-4*", "glm-4-plus"),
            ("gpt-4o*", "glm-4.6v"),
        ]);
        assert_eq!(models.resolve("gpt-4"), "glm-4");
        assert_eq!(models.resolve("gpt-4-turbo"), "glm-4-plus");
        assert_eq!(models.resolve("gpt-4o-mini"), "glm-4.6v");
        assert_eq!(models.resolve("my-model"), "my-model");
        let models = map(&[("mine", "glm-4.7")]);
        assert_eq!(models.resolve("mine"), "glm-4.7");
        assert_eq!(models.resolve("gpt-4o-mini"), "glm-4.6v-flash");
    }

    #[test]
    fn aliases_are_the_configured_exact_names() {
        let models = map(&[("mine", "glm-4.7"), ("ours*", "glm-5")]);
        assert_eq!(models.aliases().collect::<Vec<_>>(), ["mine"]);
        assert!(models.targets().any(|t| t == "cogview-4-250304"));
    }

    #[test]
    fn every_builtin_alias_target_has_a_price_today() {
        use crate::catalogue::PriceBook;
        use crate::domain::TokenCounts;
        let catalogue = Catalogue::builtin();
        let book = PriceBook::builtin();
        let map = ModelMap::default();
        let counts = TokenCounts {
            prompt: 1000,
            completion: 100,
            images: 1,
            ..TokenCounts::default()
        };
        for name in catalogue.common_openai_models() {
            let target = map.resolve(name);
            assert!(
                book.cost(target, chrono::Utc::now(), &counts).is_some(),
                "{name} -> {target}"
            );
        }
    }
}
