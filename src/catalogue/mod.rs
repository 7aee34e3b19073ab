//! The model catalogue: every GLM model the gateway knows, as data (`models.toml`, compiled
//! in): its kind and family, the parameters it takes, its caps, its embedding dimensions and
//! image sizes, and its dated prices. Translation, limits and pricing all read it here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::domain::Price;

mod prices;

pub use prices::{ConfiguredPrice, PriceBook, PriceEntry, PricedAt};

const BUILTIN_TOML: &str = include_str!("models.toml");

/// What kind of endpoint a model serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Chat,
    Vision,
    Character,
    Embedding,
    Image,
}

/// Custom image sizes a model takes beyond its presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSize {
    pub min_side: u32,
    /// `None`: no upper bound per side.
    #[serde(default)]
    pub max_side: Option<u32>,
    /// Each side a multiple of this.
    pub step: u32,
    pub max_pixels: u64,
}

impl CustomSize {
    pub fn fits(&self, w: u32, h: u32) -> bool {
        let side_fits = |side: u32| {
            side >= self.min_side
                && self.max_side.is_none_or(|max| side <= max)
                && self.step > 0
                && side.is_multiple_of(self.step)
        };
        side_fits(w) && side_fits(h) && u64::from(w) * u64::from(h) <= self.max_pixels
    }
}

/// One `[[models]]` entry as written: every setting optional, filled from prefix entries and
/// `[defaults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    name: String,
    family: Option<String>,
    kind: Option<Kind>,
    #[serde(default)]
    listed: bool,
    #[serde(default)]
    retired: bool,
    context: Option<i64>,
    max_output: Option<i64>,
    responses_max_output: Option<i64>,
    temperature_max: Option<f64>,
    reasoning_efforts: Option<Vec<String>>,
    max_images: Option<u32>,
    base64_images: Option<bool>,
    dimensions: Option<Vec<i64>>,
    default_dimensions: Option<i64>,
    max_batch: Option<usize>,
    sizes: Option<Vec<String>>,
    custom_size: Option<CustomSize>,
    presets_only: Option<bool>,
    qualities: Option<Vec<String>>,
    #[serde(default)]
    prices: Vec<DatedPrice>,
}

/// A price as the file writes it: the price, from when, and where it was read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatedPrice {
    since: NaiveDate,
    source: String,
    #[serde(default)]
    tiers: Vec<crate::domain::PriceTier>,
    #[serde(default, deserialize_with = "crate::domain::amount")]
    per_image: rust_decimal::Decimal,
}

impl DatedPrice {
    fn price(&self) -> Price {
        Price {
            tiers: self.tiers.clone(),
            per_image: self.per_image,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    sources: BTreeMap<String, String>,
    defaults: Entry,
    openai: OpenAi,
    models: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenAi {
    aliases: BTreeMap<String, String>,
    common: Vec<String>,
}

/// Everything the gateway knows of one model name, its entries and `[defaults]` merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub family: Option<String>,
    pub kind: Kind,
    pub context: Option<i64>,
    /// The largest chat `max_tokens`.
    pub max_output: i64,
    /// The largest Responses `max_output_tokens`.
    pub responses_max_output: i64,
    pub temperature_max: f64,
    /// The only `reasoning.effort` values the model takes; `None`: any, as sent.
    pub reasoning_efforts: Option<Vec<String>>,
    pub max_images: Option<u32>,
    pub base64_images: bool,
    /// `dimensions` values an embedding model takes; `None`: no `dimensions` at all.
    pub dimensions: Option<Vec<i64>>,
    pub default_dimensions: Option<i64>,
    pub max_batch: Option<usize>,
    /// Image presets, `(width, height)`; empty for a model that makes no images.
    pub sizes: Vec<(u32, u32)>,
    pub custom_size: Option<CustomSize>,
    pub qualities: Vec<String>,
    /// Whether any entry (exact or prefix) names the model, beyond `[defaults]`.
    pub known: bool,
}

/// The parsed catalogue.
#[derive(Debug)]
pub struct Catalogue {
    defaults: Entry,
    /// Exact entries by name.
    exact: HashMap<String, Entry>,
    /// Prefix entries (without `*`), longest first.
    prefixes: Vec<Entry>,
    /// Exact names, in file order.
    order: Vec<String>,
    resolved: HashMap<String, Arc<ModelInfo>>,
    aliases: Vec<(String, String)>,
    common: Vec<String>,
    prices: Vec<PriceEntry>,
    sources: BTreeMap<String, String>,
}

static BUILTIN: LazyLock<Result<Catalogue, String>> =
    LazyLock::new(|| Catalogue::parse(BUILTIN_TOML));

impl Catalogue {
    /// The catalogue compiled into the binary. `check_builtin` at start-up (and a unit test)
    /// makes sure it parses; were it broken, this would be an empty catalogue.
    pub fn builtin() -> &'static Catalogue {
        static EMPTY: LazyLock<Catalogue> = LazyLock::new(Catalogue::empty);
        BUILTIN.as_ref().unwrap_or(&EMPTY)
    }

    /// Why the compiled-in catalogue is unusable, if it is.
    pub fn check_builtin() -> Result<(), String> {
        BUILTIN.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn empty() -> Self {
        Self {
            defaults: Entry::default(),
            exact: HashMap::new(),
            prefixes: Vec::new(),
            order: Vec::new(),
            resolved: HashMap::new(),
            aliases: Vec::new(),
            common: Vec::new(),
            prices: Vec::new(),
            sources: BTreeMap::new(),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("model catalogue: {e}"))?;
        Self::from_file(file)
    }

    fn from_file(file: File) -> Result<Self, String> {
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        let mut order = Vec::new();
        let mut prices = Vec::new();
        for entry in file.models {
            for dated in &entry.prices {
                if !file.sources.contains_key(&dated.source) {
                    return Err(format!(
                        "model catalogue: {} names an unknown source `{}`",
                        entry.name, dated.source
                    ));
                }
                prices.push(PriceEntry::builtin(&entry.name, dated)?);
            }
            match entry.name.strip_suffix('*') {
                Some(stem) => prefixes.push(Entry {
                    name: stem.to_owned(),
                    ..entry
                }),
                None => {
                    order.push(entry.name.clone());
                    if exact.insert(entry.name.clone(), entry).is_some() {
                        let name = order.last().cloned().unwrap_or_default();
                        return Err(format!("model catalogue: `{name}` is listed twice"));
                    }
                }
            }
        }
        prefixes.sort_by(|a, b| b.name.len().cmp(&a.name.len()).then(a.name.cmp(&b.name)));
        let mut catalogue = Self {
            defaults: file.defaults,
            exact,
            prefixes,
            order,
            resolved: HashMap::new(),
            aliases: file.openai.aliases.into_iter().collect(),
            common: file.openai.common,
            prices,
            sources: file.sources,
        };
        let resolved = catalogue
            .order
            .iter()
            .map(|name| (name.clone(), Arc::new(catalogue.merge(name))))
            .collect();
        catalogue.resolved = resolved;
        Ok(catalogue)
    }

    /// What the gateway knows of `model` (any case): its own entry, then the prefix entries
    /// it matches, then `[defaults]`.
    pub fn model(&self, model: &str) -> Arc<ModelInfo> {
        if let Some(info) = self.resolved.get(model) {
            return Arc::clone(info);
        }
        let lower = model.to_ascii_lowercase();
        match self.resolved.get(&lower) {
            Some(info) => Arc::clone(info),
            None => Arc::new(self.merge(&lower)),
        }
    }

    /// The entries that name `model`, most specific first, then `[defaults]`.
    fn entries<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a Entry> {
        let exact = self.exact.get(model);
        let model = model.to_owned();
        exact
            .into_iter()
            .chain(
                self.prefixes
                    .iter()
                    .filter(move |e| model.starts_with(e.name.as_str())),
            )
            .chain(std::iter::once(&self.defaults))
    }

    fn merge(&self, model: &str) -> ModelInfo {
        macro_rules! first {
            ($field:ident) => {
                self.entries(model).find_map(|e| e.$field.clone())
            };
        }
        let sizes = first!(sizes)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| parse_size(s))
            .collect();
        let presets_only = first!(presets_only).unwrap_or(false);
        ModelInfo {
            family: first!(family),
            kind: first!(kind).unwrap_or(Kind::Chat),
            context: first!(context),
            max_output: first!(max_output).unwrap_or(131_072),
            responses_max_output: first!(responses_max_output).unwrap_or(131_072),
            temperature_max: first!(temperature_max).unwrap_or(1.0),
            reasoning_efforts: first!(reasoning_efforts),
            max_images: first!(max_images),
            base64_images: first!(base64_images).unwrap_or(true),
            dimensions: first!(dimensions),
            default_dimensions: first!(default_dimensions),
            max_batch: first!(max_batch),
            sizes,
            custom_size: if presets_only {
                None
            } else {
                first!(custom_size)
            },
            qualities: first!(qualities).unwrap_or_default(),
            known: self.entries(model).count() > 1,
        }
    }

    /// The models `/v1/models` lists besides the aliases, in file order.
    pub fn listed(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .filter(|name| {
                self.exact
                    .get(*name)
                    .is_some_and(|e| e.listed && !e.retired)
            })
            .map(String::as_str)
    }

    /// Every model with an entry of its own, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// The built-in alias map: (OpenAI name or `prefix*`, GLM model).
    pub fn aliases(&self) -> &[(String, String)] {
        &self.aliases
    }

    /// Concrete OpenAI ids clients commonly send.
    pub fn common_openai_models(&self) -> &[String] {
        &self.common
    }

    /// The built-in dated prices.
    pub fn prices(&self) -> &[PriceEntry] {
        &self.prices
    }

    /// What a source key stands for.
    pub fn source(&self, key: &str) -> Option<&str> {
        self.sources.get(key).map(String::as_str)
    }
}

/// `WxH` in pixels.
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.split_once('x')?;
    let (w, h) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests;
