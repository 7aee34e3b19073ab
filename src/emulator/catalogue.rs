//! The built-in catalogue of GLM chat models and the per-model limits the emulator enforces.

/// Chat models real Zhipu serves under `/chat/completions`; any other name is code 1211.
const CHAT_MODELS: &[&str] = &[
    "glm-5.1",
    "glm-5",
    "glm-5-turbo",
    "glm-4.7",
    "glm-4.7-flash",
    "glm-4.7-flashx",
    "glm-4.6",
    "glm-4.5",
    "glm-4.5-air",
    "glm-4.5-airx",
    "glm-4.5-flash",
    "glm-4.5-x",
    "glm-4-plus",
    "glm-4-air",
    "glm-4-air-250414",
    "glm-4-airx",
    "glm-4-long",
    "glm-4-flash",
    "glm-4-flashx",
    "glm-4-flash-250414",
    "glm-4-flashx-250414",
    "glm-4",
    "glm-4-0520",
    "glm-3-turbo",
    "glm-4v",
    "glm-4v-plus",
    "glm-4v-plus-0111",
    "glm-4v-flash",
    "glm-4.5v",
    "glm-4.6v",
    "glm-4.6v-flash",
    "glm-5v-turbo",
    "glm-4.1v-thinking-flash",
    "charglm-4",
    "emohaa",
    "codegeex-4",
];

pub(crate) fn is_known(model: &str) -> bool {
    CHAT_MODELS.contains(&model)
}

/// Models named without a dotted version (glm-4-*, glm-3-turbo, glm-4v*, charglm-4, emohaa,
/// codegeex-4) follow the 2024 rules: temperature only in the open interval (0,1). The GLM-5
/// family is new despite its undotted names.
pub(crate) fn is_legacy(model: &str) -> bool {
    !model.contains('.') && !model.starts_with("glm-5")
}

/// The largest `max_tokens` the model accepts.
pub(crate) fn max_tokens_cap(model: &str) -> u64 {
    match model {
        "charglm-4" | "emohaa" => 4096,
        "glm-4" | "glm-4-0520" | "glm-3-turbo" | "glm-4v" => 8192,
        m if m.starts_with("glm-4.5") => 98_304,
        _ => 131_072,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_model_generation() {
        assert!(is_known("glm-4.5-air") && !is_known("gpt-4o"));
        assert!(is_legacy("glm-4-flash") && is_legacy("emohaa"));
        assert!(!is_legacy("glm-4.5v") && !is_legacy("glm-5") && !is_legacy("glm-5v-turbo"));
        assert_eq!(max_tokens_cap("glm-4.5v"), 98_304);
        assert_eq!(max_tokens_cap("glm-4v"), 8192);
        assert_eq!(max_tokens_cap("glm-4v-plus"), 131_072);
    }
}
