//! The `#directive` words a test (or a demo user) writes in its last user message to make the
//! emulator misbehave on purpose: errors, slow or broken streams, echo, tool calls, invalid
//! JSON, large or slow image downloads. [`DIRECTIVES_HELP`] lists them for people.

use std::time::Duration;

use serde_json::Value;

use super::messages::role_of;

/// Caps keep a typo from tying up a test for hours.
const MAX_CHUNKS: usize = 10_000;
const MAX_SLOW_MS: u64 = 60_000;
const MAX_LONG_LINE: usize = 64 << 20;

/// Every directive, one per line, for `glm-gateway emulator --help` and the README.
pub const DIRECTIVES_HELP: &str = "\
Directives: words in the last user message (or the image prompt) of a request to the emulator.
  #echo               answer with the request body as received, as text in 16-char pieces
  #chunks N           answer with the N words w1 .. wN, one stream chunk each
  #slow MS            wait MS ms before answering, and between stream chunks
  #finish REASON      end with this finish_reason (e.g. length, sensitive)
  #cached N           report N of the prompt tokens as cache hits (at most all of them)
  #tool               call the first offered function tool (naming the tool does so too)
  #error CODE         fail with Zhipu business error CODE and its usual HTTP status
  #error200 CODE      the same error body, sent with HTTP 200
  #http spring|html|empty  fail like the front end: Spring 404 JSON, 502 HTML, empty 503
  #midstream-error    stream two chunks, then an error event (code 1234)
  #cut                stream two chunks, then drop the connection
  #stall              stream two chunks, then send nothing more (keeping the connection)
  #hang               (chat) send the headers, then nothing at all: no first stream chunk
                      (a plain answer never comes)
  #only-key ID        (chat) the faults above strike only calls signed with upstream key ID
                      (the part before the dot); calls with other keys are answered normally
  #once               (chat) the faults above strike only the first call with this message text
  #bad-utf8           the second chunk's content holds a byte that is not UTF-8
  #long-line BYTES    after two chunks, one chunk whose data line is BYTES bytes long
  #bad-json           (json_object mode, any user message) answer JSON that breaks the schema,
                      until the last user message mentions validation or
                      \"did not match the schema\"
  #always-bad-json    (json_object mode, any user message) always answer JSON that breaks it
  #big-image          (image prompt) the generated file is a ~12 MB PNG
  #slow-image MS      (image prompt) downloading the file waits MS ms first
Response API (/api/v1/responses) only:
  #error CODE         with a string CODE (model_not_found, overloaded, ...): that error
  #midstream-fail     stream two text deltas, then response.failed and an error event
  #no-done            end the stream without the trailing data: [DONE]
";

/// How `#bad-json` and `#always-bad-json` spoil a JSON answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadJson {
    UntilRepaired,
    Always,
}

/// A non-Zhipu reply from whatever sits in front of Zhipu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpFault {
    Spring,
    Html,
    Empty,
}

/// A way to break a stream after two content chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamFault {
    MidstreamError,
    Cut,
    Stall,
    BadUtf8,
    /// A chunk this many bytes long, then the rest of the answer.
    LongLine(usize),
}

#[derive(Debug, Default)]
pub(crate) struct Directives {
    pub echo: bool,
    pub tool: bool,
    pub chunks: Option<usize>,
    pub slow: Option<Duration>,
    /// Error code and whether it is sent with HTTP 200.
    pub error: Option<(u32, bool)>,
    pub http: Option<HttpFault>,
    pub finish: Option<String>,
    /// Prompt tokens reported as cache hits.
    pub cached: Option<u64>,
    pub fault: Option<StreamFault>,
    pub bad_json: Option<BadJson>,
    pub big_image: bool,
    pub slow_image: Option<Duration>,
    /// Send nothing after the headers.
    pub hang: bool,
    /// Faults strike only calls made with this upstream key id.
    pub only_key: Option<String>,
    /// Faults strike only the first call with this message text.
    pub once: bool,
    /// The message text with the directives (and their arguments) removed.
    pub text: String,
}

impl Directives {
    /// Reads the directives from the last user message of `messages`. `#bad-json` and
    /// `#always-bad-json` count in any user message: the follow-up that asks for a repair is a
    /// new user message that will not repeat them.
    pub(crate) fn from_messages(messages: &[Value]) -> Self {
        let last_user = messages.iter().rev().find(|m| role_of(m) == Some("user"));
        let mut out = Self::parse(&last_user.map(message_text).unwrap_or_default());
        for message in messages.iter().filter(|m| role_of(m) == Some("user")) {
            let earlier = Self::parse(&message_text(message)).bad_json;
            if earlier == Some(BadJson::Always) || out.bad_json.is_none() {
                out.bad_json = earlier.or(out.bad_json);
            }
        }
        out
    }

    pub(crate) fn parse(text: &str) -> Self {
        let mut out = Self::default();
        let mut words = Vec::new();
        let mut tokens = text.split_whitespace().peekable();
        while let Some(token) = tokens.next() {
            let mut arg = || tokens.next_if(|next| !next.starts_with('#'));
            match token {
                "#echo" => out.echo = true,
                "#tool" => out.tool = true,
                "#midstream-error" => out.fault = Some(StreamFault::MidstreamError),
                "#cut" => out.fault = Some(StreamFault::Cut),
                "#stall" => out.fault = Some(StreamFault::Stall),
                "#hang" => out.hang = true,
                "#once" => out.once = true,
                "#only-key" => out.only_key = arg().map(str::to_owned),
                "#bad-utf8" => out.fault = Some(StreamFault::BadUtf8),
                "#long-line" => {
                    out.fault = arg()
                        .and_then(|n| n.parse().ok())
                        .map(|n: usize| StreamFault::LongLine(n.min(MAX_LONG_LINE)))
                }
                "#bad-json" => out.bad_json = out.bad_json.or(Some(BadJson::UntilRepaired)),
                "#always-bad-json" => out.bad_json = Some(BadJson::Always),
                "#big-image" => out.big_image = true,
                "#slow-image" => out.slow_image = arg().and_then(parse_ms),
                "#chunks" => {
                    out.chunks = arg()
                        .and_then(|n| n.parse().ok())
                        .map(|n: usize| n.clamp(1, MAX_CHUNKS))
                }
                "#slow" => out.slow = arg().and_then(parse_ms),
                "#error" => out.error = arg().and_then(|c| c.parse().ok()).map(|c| (c, false)),
                "#error200" => out.error = arg().and_then(|c| c.parse().ok()).map(|c| (c, true)),
                "#finish" => out.finish = arg().map(str::to_owned),
                "#cached" => out.cached = arg().and_then(|n| n.parse().ok()),
                "#http" => out.http = arg().and_then(parse_http),
                _ => words.push(token),
            }
        }
        out.text = words.join(" ");
        out
    }

    /// Drops the faults (errors, `#http`, stream faults, `#hang`): the call is answered normally.
    pub(crate) fn spare(&mut self) {
        self.error = None;
        self.http = None;
        self.fault = None;
        self.hang = false;
    }
}

fn parse_ms(ms: &str) -> Option<Duration> {
    let ms: u64 = ms.parse().ok()?;
    Some(Duration::from_millis(ms.min(MAX_SLOW_MS)))
}

fn parse_http(kind: &str) -> Option<HttpFault> {
    match kind {
        "spring" => Some(HttpFault::Spring),
        "html" => Some(HttpFault::Html),
        "empty" => Some(HttpFault::Empty),
        _ => None,
    }
}

/// A message's text: string content, or its text parts joined by spaces.
pub(crate) fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_parsed_and_removed() {
        let d = Directives::parse("hi #chunks 3 there #slow 50 #error200 1301 #finish length");
        assert_eq!(d.text, "hi there");
        assert_eq!(d.chunks, Some(3));
        assert_eq!(d.slow, Some(Duration::from_millis(50)));
        assert_eq!(d.error, Some((1301, true)));
        assert_eq!(d.finish.as_deref(), Some("length"));
        let d = Directives::parse("#http html #cut #tool");
        assert_eq!(
            (d.http, d.fault, d.tool),
            (Some(HttpFault::Html), Some(StreamFault::Cut), true)
        );
        let d = Directives::parse("a cat #big-image #slow-image 20");
        assert_eq!(d.text, "a cat");
        assert!(d.big_image);
        assert_eq!(d.slow_image, Some(Duration::from_millis(20)));
        let d = Directives::parse("x #only-key k1 #once #hang");
        assert_eq!(d.text, "x");
        assert_eq!(d.only_key.as_deref(), Some("k1"));
        assert!(d.once && d.hang);
        let d = Directives::parse("x #long-line 1000");
        assert_eq!(d.fault, Some(StreamFault::LongLine(1000)));
    }

    #[test]
    fn the_readme_lists_the_directives_as_help_does() {
        let readme = include_str!("../../README.md");
        for line in DIRECTIVES_HELP.lines().skip(1) {
            let line = line.strip_prefix("  ").unwrap_or(line);
            assert!(readme.contains(line), "README lacks {line:?}");
        }
    }

    #[test]
    fn cached_is_read_as_a_count() {
        assert_eq!(Directives::parse("hi #cached 300").cached, Some(300));
        assert_eq!(Directives::parse("hi #cached many").cached, None);
    }

    #[test]
    fn bad_json_counts_in_earlier_user_messages() {
        let messages = [
            serde_json::json!({"role": "user", "content": "give JSON #always-bad-json"}),
            serde_json::json!({"role": "assistant", "content": "{}"}),
            serde_json::json!({"role": "user", "content": "fix it #bad-json"}),
        ];
        let d = Directives::from_messages(&messages);
        assert_eq!(d.bad_json, Some(BadJson::Always));
        assert_eq!(d.text, "fix it");
        let d = Directives::from_messages(&messages[1..]);
        assert_eq!(d.bad_json, Some(BadJson::UntilRepaired));
    }

    #[test]
    fn help_names_every_directive() {
        for word in [
            "#echo",
            "#chunks",
            "#slow ",
            "#finish",
            "#cached",
            "#tool",
            "#error ",
            "#error200",
            "#http",
            "#midstream-error",
            "#cut",
            "#stall",
            "#hang",
            "#only-key",
            "#once",
            "#bad-utf8",
            "#long-line",
            "#bad-json",
            "#always-bad-json",
            "#big-image",
            "#slow-image",
        ] {
            assert!(DIRECTIVES_HELP.contains(word), "{word}");
        }
    }
}
