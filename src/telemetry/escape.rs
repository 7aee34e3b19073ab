//! The last guard of the log: no logged value, whatever a client put in it, can start a line
//! or a terminal escape sequence. Text lines get control characters written as `\u{..}`;
//! JSON lines (which serde already escapes below 0x20) get DEL and C1 controls as `\u00..`,
//! which keeps them valid JSON with the same value.

use std::io::{self, Write};

/// How a line is escaped.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `keep_esc`: colour output, whose ESC bytes are the formatter's own.
    Text {
        keep_esc: bool,
    },
    Json,
}

/// Writes each log event (one `write` per event) with its control characters escaped, keeping
/// only tabs, the final newline, and, when `keep_esc` (colour output), ESC.
pub struct EscapingWriter<W> {
    inner: W,
    mode: Mode,
}

impl<W: Write> EscapingWriter<W> {
    /// For text lines.
    pub fn new(inner: W, keep_esc: bool) -> Self {
        Self {
            inner,
            mode: Mode::Text { keep_esc },
        }
    }

    /// For JSON lines.
    pub fn json(inner: W) -> Self {
        Self {
            inner,
            mode: Mode::Json,
        }
    }
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        // Bytes below 0x80 are whole characters in UTF-8; C1 controls start with 0xC2.
        let keep_esc = matches!(self.mode, Mode::Text { keep_esc: true });
        let clean = !body.iter().any(|&b| {
            (b < 0x20 && b != b'\t' && !(keep_esc && b == 0x1b)) || b == 0x7f || b == 0xc2
        });
        if clean {
            self.inner.write_all(buf)?;
        } else {
            let escaped = match self.mode {
                Mode::Text { keep_esc } => escape_line(buf, keep_esc),
                Mode::Json => escape_json_line(buf),
            };
            self.inner.write_all(&escaped)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `buf` with every control character but tab, a trailing newline and (if `keep_esc`) ESC
/// written as `\u{..}`.
pub fn escape_line(buf: &[u8], keep_esc: bool) -> Vec<u8> {
    rewrite_controls(
        buf,
        |c| c != '\t' && !(keep_esc && c == '\u{1b}'),
        |c| format!("\\u{{{c:x}}}"),
    )
}

/// A JSON line with every control character (a tab too) but its trailing newline written as
/// `\u00..`: inside a JSON string that is the same character, and outside one serde writes
/// none.
pub fn escape_json_line(buf: &[u8]) -> Vec<u8> {
    rewrite_controls(buf, |_| true, |c| format!("\\u{c:04x}"))
}

/// `buf` with the control characters `chosen` picks, all but a trailing newline, written as
/// `escaped` gives their code point.
fn rewrite_controls(
    buf: &[u8],
    chosen: impl Fn(char) -> bool,
    escaped: impl Fn(u32) -> String,
) -> Vec<u8> {
    let (body, newline) = match buf.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (buf, false),
    };
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(buf.len());
    for c in text.chars() {
        if c.is_control() && chosen(c) {
            out.push_str(&escaped(u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if newline {
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::{escape_json_line, escape_line};

    #[test]
    fn control_characters_cannot_start_a_line_or_an_escape_sequence() {
        let line = b"INFO team=\r\nFAKE ERROR\x1b[31m\0\x7f\xc2\x9b end\n";
        let out = String::from_utf8(escape_line(line, false)).unwrap();
        assert_eq!(
            out,
            "INFO team=\\u{d}\\u{a}FAKE ERROR\\u{1b}[31m\\u{0}\\u{7f}\\u{9b} end\n"
        );
    }

    #[test]
    fn colour_output_keeps_esc_and_tabs() {
        let out = escape_line(b"\x1b[2mINFO\x1b[0m\ta\n", true);
        assert_eq!(out, b"\x1b[2mINFO\x1b[0m\ta\n");
    }

    #[test]
    fn tracing_debug_fields_escape_client_text() {
        use std::sync::{Arc, Mutex};
        let sink = Arc::new(Mutex::new(Vec::new()));
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || super::EscapingWriter::new(SinkWriter(writer.clone()), false))
            .with_ansi(false)
            .finish();
        let team = "t\r\nFAKE ERROR line\x1b[31m\0";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(team = ?team, "key revoked");
            tracing::info!(team = %team, "a field shown with Display");
        });
        let out = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.lines().all(|l| !l.starts_with("FAKE")), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\0') && !out.contains('\r'));
    }

    #[test]
    fn json_lines_stay_json_with_the_same_values() {
        use std::sync::{Arc, Mutex};
        let sink = Arc::new(Mutex::new(Vec::new()));
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || super::EscapingWriter::json(SinkWriter(writer.clone())))
            .finish();
        let team = "t\r\nFAKE\t\u{1b}[31m\0\u{7f}\u{9b}\"}\n{\"level\":\"ERROR\"";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(team = ?team, "key revoked");
            tracing::info!(team = %team, "a field shown with Display");
        });
        let out = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 2, "{out}");
        for line in out.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let logged = value["team"].as_str().unwrap();
            assert!(logged == team || logged == format!("{team:?}"), "{line}");
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
        let escaped = String::from_utf8(escape_json_line(b"{\"a\":\"\x7f\xc2\x9b\"}\n")).unwrap();
        assert_eq!(escaped, "{\"a\":\"\\u007f\\u009b\"}\n");
    }

    struct SinkWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SinkWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
