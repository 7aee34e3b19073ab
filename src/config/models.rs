//! The `[models]` alias table: names clients send mapped to GLM models sent upstream.

use std::collections::{BTreeMap, HashMap};

/// Exact entries beat prefix entries (`name*`); among prefixes the longest wins; a name that
/// matches nothing is sent upstream unchanged.
#[derive(Debug, Clone, Default)]
pub struct ModelMap {
    exact: HashMap<String, String>,
    /// Sorted longest prefix first, so the first hit is the longest match.
    prefixes: Vec<(String, String)>,
}

impl ModelMap {
    pub fn new(entries: BTreeMap<String, String>) -> Result<Self, String> {
        let mut map = Self::default();
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
                Some(prefix) => map.prefixes.push((prefix.to_owned(), target)),
                None if name.contains('*') => {
                    return Err(format!("`{name}`: `*` may only end a name"))
                }
                None => {
                    map.exact.insert(name, target);
                }
            }
        }
        map.prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(map)
    }

    /// The GLM model to send upstream for `name`.
    pub fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        if let Some(target) = self.exact.get(name) {
            return target;
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()))
            .map_or(name, |(_, target)| target)
    }

    /// Exact alias names, for `/v1/models`.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.exact.keys().map(String::as_str)
    }

    /// Every model an alias points at.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.exact
            .values()
            .chain(self.prefixes.iter().map(|(_, t)| t))
            .map(String::as_str)
    }
}
