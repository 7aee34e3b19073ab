//! What a chat request may use, read from the GLM request body before it goes upstream.

use serde_json::{Map, Value};

/// Characters of the prompt's text (string contents, text parts, tool-call arguments) and the
/// body's `max_tokens`, if any.
pub fn prompt_and_max_tokens(body: &Map<String, Value>) -> (usize, Option<i64>) {
    let chars = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(message_chars)
        .sum();
    let max_tokens = body
        .get("max_tokens")
        .and_then(Value::as_i64)
        .filter(|n| *n >= 0);
    (chars, max_tokens)
}

fn message_chars(message: &Value) -> usize {
    let content = match message.get("content") {
        Some(Value::String(text)) => text.chars().count(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| text.chars().count())
            .sum(),
        _ => 0,
    };
    let calls: usize = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|call| call.pointer("/function/arguments").and_then(Value::as_str))
        .map(|arguments| arguments.chars().count())
        .sum();
    content + calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_text_parts_and_reads_max_tokens() {
        let body = json!({
            "messages": [
                {"role": "system", "content": "abc"},
                {"role": "user", "content": [{"type": "text", "text": "de"}, {"type": "image_url"}]},
                {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}
            ],
            "max_tokens": 100
        });
        let Value::Object(body) = body else {
            unreachable!()
        };
        assert_eq!(prompt_and_max_tokens(&body), (7, Some(100)));
        assert_eq!(prompt_and_max_tokens(&Map::new()), (0, None));
    }
}
