//! What the ledger reads from Zhipu's Response API: `usage{input_tokens,
//! input_tokens_details.cached_tokens, output_tokens, total_tokens}` of the whole response (or of
//! a stream's terminal event), and the output text and function calls.

use serde_json::Value;

use super::{content_chars, Prompt, Tap, TokenUsage};

impl Prompt {
    /// A Responses request's `instructions` and `input` (a string, or items whose text counts).
    pub fn responses(instructions: Option<&Value>, input: Option<&Value>, keep_text: bool) -> Self {
        let mut chars = instructions
            .and_then(Value::as_str)
            .map_or(0, |t| t.chars().count());
        chars += match input {
            Some(Value::String(text)) => text.chars().count(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    content_chars(item.get("content"))
                        + ["output", "arguments"]
                            .iter()
                            .filter_map(|key| item.get(*key).and_then(Value::as_str))
                            .map(|t| t.chars().count())
                            .sum::<usize>()
                })
                .sum(),
            _ => 0,
        };
        let text = keep_text.then(|| input.map(Value::to_string).unwrap_or_default());
        Self { chars, text }
    }
}

impl Tap {
    /// A whole response object.
    pub fn responses_answer(&mut self, response: &Value) {
        self.responses_usage(response.get("usage"));
        let Some(items) = response.get("output").and_then(Value::as_array) else {
            return;
        };
        let mut calls = Vec::new();
        for item in items {
            match item.get("type").and_then(Value::as_str) {
                Some("message") => {
                    let parts = item.get("content").and_then(Value::as_array);
                    for text in parts.into_iter().flatten().filter_map(|p| p.get("text")) {
                        if let Some(text) = text.as_str() {
                            self.answer_chars += text.chars().count();
                            self.keep(text);
                        }
                    }
                }
                Some("function_call") => {
                    let arguments = item.get("arguments").and_then(Value::as_str);
                    self.answer_chars += arguments.map_or(0, |a| a.chars().count());
                    calls.push(item.clone());
                }
                _ => {}
            }
        }
        if !calls.is_empty() {
            self.tool_calls = Some(Value::Array(calls));
        }
    }

    /// One streamed event, as the upstream sent it. Deltas are counted as they come (for an
    /// estimate if the stream breaks); the terminal event's usage is the count.
    pub fn responses_event(&mut self, event: &Value) {
        match event.get("type").and_then(Value::as_str) {
            Some("response.output_text.delta") => {
                if let Some(delta) = event.get("delta").and_then(Value::as_str) {
                    self.answer_chars += delta.chars().count();
                    self.keep(delta);
                }
            }
            Some("response.function_call_arguments.delta" | "response.reasoning_text.delta") => {
                let delta = event.get("delta").and_then(Value::as_str);
                self.answer_chars += delta.map_or(0, |d| d.chars().count());
            }
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                let response = event.get("response");
                self.responses_usage(response.and_then(|r| r.get("usage")));
                let calls: Vec<Value> = response
                    .and_then(|r| r.get("output"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|item| {
                        item.get("type").and_then(Value::as_str) == Some("function_call")
                    })
                    .cloned()
                    .collect();
                if !calls.is_empty() {
                    self.tool_calls = Some(Value::Array(calls));
                }
            }
            _ => {}
        }
    }

    fn responses_usage(&mut self, usage: Option<&Value>) {
        if let Some(tokens) = usage.and_then(TokenUsage::from_responses) {
            self.tokens = Some(tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stream_counts_deltas_and_takes_the_terminal_usage() {
        let mut tap = Tap::new(true);
        tap.responses_event(&json!({"type": "response.output_text.delta", "delta": "hé"}));
        tap.responses_event(&json!({"type": "response.output_text.delta", "delta": "llo"}));
        assert_eq!(tap.answer_chars(), 5);
        assert_eq!(tap.tokens(), None);
        tap.responses_event(&json!({"type": "response.completed", "response": {"usage": {
            "input_tokens": 7, "input_tokens_details": {"cached_tokens": 2},
            "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 10
        }}}));
        let expected = TokenUsage {
            prompt: 7,
            completion: 3,
            total: 10,
            cached: 2,
            reasoning: 1,
        };
        assert_eq!(tap.tokens(), Some(expected));
        assert_eq!(tap.completion_text().as_deref(), Some("héllo"));
    }

    #[test]
    fn a_whole_response_gives_text_calls_and_usage() {
        let mut tap = Tap::new(true);
        tap.responses_answer(&json!({
            "output": [
                {"type": "message", "content": [{"type": "output_text", "text": "ok"}]},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
            ],
            "usage": {"input_tokens": 4, "output_tokens": 2}
        }));
        assert_eq!(tap.tokens().map(|t| (t.prompt, t.total)), Some((4, 6)));
        assert_eq!(tap.answer_chars(), 4);
        let stored: Value = serde_json::from_str(&tap.completion_text().unwrap()).unwrap();
        assert_eq!(stored["tool_calls"][0]["call_id"], "call_1");
    }

    #[test]
    fn prompts_count_instructions_strings_and_items() {
        let input = json!([{"role": "user", "content": [{"type": "input_text", "text": "abc"}]},
            {"type": "function_call_output", "call_id": "c", "output": "de"}]);
        let prompt = Prompt::responses(Some(&json!("xy")), Some(&input), false);
        assert_eq!((prompt.chars, prompt.text), (7, None));
        assert_eq!(
            Prompt::responses(None, Some(&json!("hello")), false).chars,
            5
        );
    }
}
