//! Logging and the Prometheus recorder.

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Logs go to stderr as text, filtered by `RUST_LOG` (default: info for the gateway).
/// Client-given text is logged with `?` (escaped); `EscapingWriter` is the backstop for any
/// other field, so no logged value can start a line or a terminal escape sequence.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("glm_gateway=info,warn"));
    let ansi = io::stderr().is_terminal();
    // A second call (tests start several gateways in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || EscapingWriter::new(io::stderr(), ansi))
        .with_ansi(ansi)
        .try_init();
}

/// Writes each log event (one `write` per event) with its control characters escaped, keeping
/// only tabs, the final newline, and, when `keep_esc` (colour output), ESC.
pub struct EscapingWriter<W> {
    inner: W,
    keep_esc: bool,
}

impl<W: Write> EscapingWriter<W> {
    pub fn new(inner: W, keep_esc: bool) -> Self {
        Self { inner, keep_esc }
    }
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        // Bytes below 0x80 are whole characters in UTF-8; C1 controls start with 0xC2.
        let clean = !body.iter().any(|&b| {
            (b < 0x20 && b != b'\t' && !(self.keep_esc && b == 0x1b)) || b == 0x7f || b == 0xc2
        });
        if clean {
            self.inner.write_all(buf)?;
        } else {
            self.inner.write_all(&escape_line(buf, self.keep_esc))?;
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
    let (body, newline) = match buf.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (buf, false),
    };
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(buf.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' && !(keep_esc && c == '\u{1b}') {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if newline {
        out.push('\n');
    }
    out.into_bytes()
}

/// The process-wide metrics recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::escape_line;

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
