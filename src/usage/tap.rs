//! What a row says about a request's prompt and answer: the upstream's token counts or an
//! estimate, the image count, and (with `store_content`) the text. The one place that reads
//! prompts and answers for the ledger; handlers and the stream relay only hand them over.

use serde_json::{Map, Value};

pub use crate::domain::TokenUsage;
use crate::json_path::At;

mod responses;

/// Stored prompt and completion text is cut at this many bytes, so that a prompt full of
/// base64 images cannot make a row (and a batch of them) huge.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

const CHAT_USAGE: [&str; 5] = [
    "/prompt_tokens",
    "/completion_tokens",
    "/total_tokens",
    "/prompt_tokens_details/cached_tokens",
    "/completion_tokens_details/reasoning_tokens",
];
const RESPONSES_USAGE: [&str; 5] = [
    "/input_tokens",
    "/output_tokens",
    "/total_tokens",
    "/input_tokens_details/cached_tokens",
    "/output_tokens_details/reasoning_tokens",
];

impl TokenUsage {
    /// Reads a chat (or embeddings) `usage` object; `None` when it has no token counts.
    pub fn from_value(usage: &Value) -> Option<Self> {
        Self::read(usage, CHAT_USAGE)
    }

    /// Reads a Responses `usage` object (`input_tokens`, `output_tokens`, …).
    pub fn from_responses(usage: &Value) -> Option<Self> {
        Self::read(usage, RESPONSES_USAGE)
    }

    /// `names`: where the prompt, completion, total, cached and reasoning counts are.
    fn read(usage: &Value, names: [&str; 5]) -> Option<Self> {
        let count = |pointer: &str| usage.at(pointer).and_then(Value::as_i64);
        let [prompt, completion, total, cached, reasoning] = names;
        let (prompt, completion) = (count(prompt), count(completion));
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        Some(Self {
            prompt,
            completion,
            total: count(total).unwrap_or(prompt + completion),
            cached: count(cached).unwrap_or(0),
            reasoning: count(reasoning).unwrap_or(0),
        })
    }
}

/// The prompt's side of a row: its size, for estimates, and its text when content is stored.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    pub chars: usize,
    pub text: Option<String>,
}

impl Prompt {
    /// A chat request's messages (string contents and text parts count).
    pub fn chat(messages: Option<&Value>, keep_text: bool) -> Self {
        let chars = messages.and_then(Value::as_array).map_or(0, |messages| {
            messages
                .iter()
                .map(|message| content_chars(message.get("content")))
                .sum()
        });
        let text = keep_text.then(|| messages.map(Value::to_string).unwrap_or_default());
        Self { chars, text }
    }

    /// Plain texts (embedding inputs, an image prompt).
    pub fn texts<'a>(texts: impl Iterator<Item = &'a str> + Clone, keep_text: bool) -> Self {
        let chars = texts.clone().map(|t| t.chars().count()).sum();
        let text = keep_text.then(|| texts.collect::<Vec<_>>().join("\n"));
        Self { chars, text }
    }
}

fn content_chars(content: Option<&Value>) -> usize {
    match content {
        Some(Value::String(text)) => text.chars().count(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| text.chars().count())
            .sum(),
        _ => 0,
    }
}

/// Gathers what an answer tells the ledger, whether it comes whole or chunk by chunk.
#[derive(Debug, Clone, Default)]
pub struct Tap {
    tokens: Option<TokenUsage>,
    /// Characters of answer (text, reasoning, tool arguments), for an estimate when the
    /// upstream reports no usage.
    answer_chars: usize,
    images: i64,
    /// The answer's text, kept only with `store_content`, cut at `MAX_CONTENT_BYTES`.
    text: Option<String>,
    text_full: bool,
    tool_calls: Option<Value>,
}

impl Tap {
    pub fn new(keep_text: bool) -> Self {
        Self {
            text: keep_text.then(String::new),
            ..Self::default()
        }
    }

    /// A whole chat answer (`choices[0].message` and `usage`).
    pub fn chat_answer(&mut self, answer: &Value) {
        self.usage(answer.get("usage"));
        let Some(message) = answer.at("/choices/0/message") else {
            return;
        };
        self.chat_delta(message);
        if let Some(calls) = message.get("tool_calls").filter(|c| !c.is_null()) {
            self.tool_calls = Some(calls.clone());
        }
    }

    /// One streamed chat chunk, as the upstream sent it.
    pub fn chat_chunk(&mut self, chunk: &Value) {
        self.usage(chunk.get("usage"));
        let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
            return;
        };
        for delta in choices.iter().filter_map(|choice| choice.get("delta")) {
            self.chat_delta(delta);
        }
    }

    /// An upstream `usage` object; a later report replaces an earlier one (streams repeat it).
    pub fn usage(&mut self, usage: Option<&Value>) {
        if let Some(tokens) = usage.and_then(TokenUsage::from_value) {
            self.tokens = Some(tokens);
        }
    }

    /// Counts from one of several upstream calls that together make the answer.
    pub fn add_tokens(&mut self, tokens: TokenUsage) {
        self.tokens
            .get_or_insert_with(TokenUsage::default)
            .add(tokens);
    }

    /// Images the upstream made: it reports them by making them, so the row's source is the
    /// upstream even though no tokens are counted.
    pub fn add_images(&mut self, count: i64) {
        self.images += count;
        self.tokens.get_or_insert_with(TokenUsage::default);
    }

    pub fn tokens(&self) -> Option<TokenUsage> {
        self.tokens
    }

    pub fn answer_chars(&self) -> usize {
        self.answer_chars
    }

    pub fn images(&self) -> i64 {
        self.images
    }

    /// The stored completion: the text, or with tool calls `{"content","tool_calls"}`.
    pub fn completion_text(&self) -> Option<String> {
        let text = self.text.as_ref()?;
        Some(match &self.tool_calls {
            Some(calls) => {
                let mut stored = Map::new();
                stored.insert("content".into(), Value::from(text.as_str()));
                stored.insert("tool_calls".into(), calls.clone());
                Value::Object(stored).to_string()
            }
            None => text.clone(),
        })
    }

    fn chat_delta(&mut self, message: &Value) {
        for key in ["content", "reasoning_content"] {
            if let Some(text) = message.get(key).and_then(Value::as_str) {
                self.answer_chars += text.chars().count();
                if key == "content" {
                    self.keep(text);
                }
            }
        }
        if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
            self.answer_chars += calls
                .iter()
                .filter_map(|call| call.at("/function/arguments").and_then(Value::as_str))
                .map(|arguments| arguments.chars().count())
                .sum::<usize>();
        }
    }

    /// Appends to the kept text while it is under the limit; the text is cut there, never
    /// holed (once a piece does not fit whole, nothing after it is kept).
    fn keep(&mut self, piece: &str) {
        let Some(kept) = self.text.as_mut() else {
            return;
        };
        if self.text_full {
            return;
        }
        let room = MAX_CONTENT_BYTES.saturating_sub(kept.len());
        if piece.len() <= room {
            kept.push_str(piece);
            return;
        }
        kept.push_str(&piece[..floor_char_boundary(piece, room)]);
        self.text_full = true;
    }
}

/// The largest char boundary of `text` at or below `at`.
pub fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_plain_answer_gives_usage_chars_and_text_with_tool_calls() {
        let mut tap = Tap::new(true);
        tap.chat_answer(&json!({
            "choices": [{"message": {"content": "héllo", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        }));
        assert_eq!(tap.tokens().map(|t| t.total), Some(5));
        assert_eq!(tap.answer_chars(), 7);
        let stored: Value = serde_json::from_str(&tap.completion_text().unwrap()).unwrap();
        assert_eq!(stored["content"], "héllo");
        assert_eq!(stored["tool_calls"][0]["id"], "c");
    }

    #[test]
    fn stream_chunks_add_up_and_the_last_usage_wins() {
        let mut tap = Tap::new(false);
        tap.chat_chunk(&json!({"choices": [{"delta": {"content": "ab"}}]}));
        tap.chat_chunk(&json!({"choices": [{"delta": {"reasoning_content": "cd"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}));
        tap.chat_chunk(
            &json!({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}),
        );
        assert_eq!(tap.answer_chars(), 4);
        assert_eq!(
            tap.tokens(),
            Some(TokenUsage {
                prompt: 4,
                completion: 6,
                total: 10,
                cached: 0,
                reasoning: 0,
            })
        );
        assert_eq!(tap.completion_text(), None);
    }

    #[test]
    fn kept_text_is_cut_at_the_limit_on_a_char_boundary_without_holes() {
        let mut tap = Tap::new(true);
        tap.keep(&"a".repeat(MAX_CONTENT_BYTES - 1));
        tap.keep("éé");
        tap.keep("b");
        assert_eq!(tap.completion_text().unwrap().len(), MAX_CONTENT_BYTES - 1);
    }

    #[test]
    fn several_calls_sum_their_tokens() {
        let mut tap = Tap::new(false);
        tap.add_tokens(TokenUsage {
            prompt: 2,
            completion: 0,
            total: 2,
            cached: 0,
            reasoning: 0,
        });
        tap.add_tokens(TokenUsage {
            prompt: 3,
            completion: 0,
            total: 3,
            cached: 1,
            reasoning: 2,
        });
        assert_eq!(
            tap.tokens(),
            Some(TokenUsage {
                prompt: 5,
                completion: 0,
                total: 5,
                cached: 1,
                reasoning: 2,
            })
        );
    }

    #[test]
    fn prompts_count_text_parts_and_keep_text_only_when_asked() {
        let messages = json!([
            {"role": "user", "content": [{"type": "text", "text": "abc"}, {"type": "image_url"}]},
            {"role": "assistant", "content": "de"}
        ]);
        let prompt = Prompt::chat(Some(&messages), false);
        assert_eq!((prompt.chars, prompt.text), (5, None));
        assert!(Prompt::chat(Some(&messages), true)
            .text
            .unwrap()
            .contains("abc"));
        assert_eq!(
            Prompt::texts(["ab", "c"].into_iter(), true).text.as_deref(),
            Some("ab\nc")
        );
    }
}
