//! `[emulation]`: whether the gateway keeps the promise of `response_format: json_schema` and of a
//! forced `tool_choice` (which GLM lacks) by rewriting the request and checking the answer, and
//! how many repair calls it may make. On by default; switchable per GLM model.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// Most repair calls one request may cause; each is a whole extra upstream call.
const MAX_REPAIR_ATTEMPTS: u32 = 3;

/// What the gateway does for one request's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmulationSwitches {
    /// Emulate `response_format: json_schema` (off: downgraded to `json_object`, unchecked).
    pub json_schema: bool,
    /// Emulate `tool_choice` `required` or a named function (off: downgraded to `auto`).
    pub tool_choice: bool,
    /// Repair calls after an answer that breaks the promise; 0 only checks.
    pub repair_attempts: u32,
}

impl Default for EmulationSwitches {
    fn default() -> Self {
        Self {
            json_schema: true,
            tool_choice: true,
            repair_attempts: 1,
        }
    }
}

/// The section, validated: the defaults and the per-model overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmulationConfig {
    pub defaults: EmulationSwitches,
    /// By GLM model name or `prefix*`, longest first; each field falls back to the defaults.
    overrides: Vec<(String, FileSwitches)>,
}

impl EmulationConfig {
    /// The switches for a GLM model (the name sent upstream): an exact override, else the
    /// longest matching `prefix*` override, else the defaults.
    pub fn for_model(&self, upstream_model: &str) -> EmulationSwitches {
        let exact = self
            .overrides
            .iter()
            .find(|(name, _)| name == upstream_model);
        let prefix = || {
            self.overrides.iter().find(|(name, _)| {
                name.strip_suffix('*')
                    .is_some_and(|prefix| upstream_model.starts_with(prefix))
            })
        };
        let defaults = self.defaults;
        match exact.or_else(prefix) {
            Some((_, over)) => EmulationSwitches {
                json_schema: over.json_schema.unwrap_or(defaults.json_schema),
                tool_choice: over.tool_choice.unwrap_or(defaults.tool_choice),
                repair_attempts: over.repair_attempts.unwrap_or(defaults.repair_attempts),
            },
            None => defaults,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEmulation {
    json_schema: Option<bool>,
    tool_choice: Option<bool>,
    repair_attempts: Option<u32>,
    #[serde(default)]
    models: BTreeMap<String, FileSwitches>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSwitches {
    json_schema: Option<bool>,
    tool_choice: Option<bool>,
    repair_attempts: Option<u32>,
}

pub(super) fn emulation_config(file: FileEmulation) -> Result<EmulationConfig, ConfigError> {
    let check = |setting: String, attempts: Option<u32>| match attempts {
        Some(n) if n > MAX_REPAIR_ATTEMPTS => Err(ConfigError::new(
            setting,
            format!("must be at most {MAX_REPAIR_ATTEMPTS}"),
        )),
        _ => Ok(()),
    };
    check("emulation.repair_attempts".into(), file.repair_attempts)?;
    let defaults = EmulationSwitches::default();
    let mut overrides = Vec::with_capacity(file.models.len());
    for (name, switches) in file.models {
        let setting = format!("emulation.models.\"{name}\"");
        let stem = name.strip_suffix('*').unwrap_or(&name);
        if stem.is_empty() || stem.contains('*') {
            return Err(ConfigError::new(
                setting,
                "must be a model name, or a prefix ending in `*`",
            ));
        }
        check(
            format!("{setting}.repair_attempts"),
            switches.repair_attempts,
        )?;
        overrides.push((name, switches));
    }
    overrides.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    Ok(EmulationConfig {
        defaults: EmulationSwitches {
            json_schema: file.json_schema.unwrap_or(defaults.json_schema),
            tool_choice: file.tool_choice.unwrap_or(defaults.tool_choice),
            repair_attempts: file.repair_attempts.unwrap_or(defaults.repair_attempts),
        },
        overrides,
    })
}
