//! Logging (text or JSON lines on stderr) and the Prometheus recorder; the request metrics,
//! their labels and the per-request clock live in the submodules.

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, FormatFields};
use tracing_subscriber::EnvFilter;

pub mod clock;
mod escape;
pub mod labels;
pub mod series;

pub use escape::{escape_json_line, escape_line, EscapingWriter};

/// The target of the one line each request leaves when its ledger row is finished.
pub const ACCESS_TARGET: &str = "glm_gateway::access";

/// How log lines are written (`--log-format`, `GLM_GATEWAY_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object a line, with the fields of the request's span (its `request_id`).
    Json,
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: info for the gateway). Client-given
/// text is logged with `?` (escaped); `EscapingWriter` is the backstop for any other field, so
/// no logged value can start a line or a terminal escape sequence. JSON lines carry the
/// current span's fields under `span` (so every line logged while serving a request has its
/// `request_id`) and the event's at the top level.
pub fn init_logging(format: LogFormat) {
    JSON_LOGS.store(format == LogFormat::Json, Ordering::Relaxed);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("glm_gateway=info,warn"));
    // A second call (tests start several gateways in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => {
            let ansi = io::stderr().is_terminal();
            let text = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(move || EscapingWriter::new(io::stderr(), ansi))
                .with_ansi(ansi);
            // Without colour the fields are written plainly: the default field formatter
            // styles every name even with no colour to give, a third of an access line's cost.
            match ansi {
                true => text.try_init(),
                false => text.fmt_fields(plain_fields()).try_init(),
            }
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(|| EscapingWriter::json(io::stderr()))
            .try_init(),
    };
}

/// `name=value` fields, values with `Debug` (strings quoted), the message as itself.
fn plain_fields() -> impl for<'writer> FormatFields<'writer> + 'static {
    format::debug_fn(|writer, field, value| match field.name() {
        "message" => write!(writer, "{value:?}"),
        name => write!(writer, "{name}={value:?}"),
    })
    .delimited(" ")
}

static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Client-given text for a log field, logged with `?`: quoted and escaped in text lines (so it
/// cannot pose as other fields), as itself in JSON lines (whose strings are escaped anyway).
pub struct ClientText<'a>(pub &'a str);

impl fmt::Debug for ClientText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if JSON_LOGS.load(Ordering::Relaxed) {
            f.write_str(self.0)
        } else {
            fmt::Debug::fmt(self.0, f)
        }
    }
}

/// The process-wide metrics recorder, installed on first use, with the histograms' buckets.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = with_buckets(PrometheusBuilder::new()).build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

fn with_buckets(mut builder: PrometheusBuilder) -> PrometheusBuilder {
    for (name, buckets) in series::HISTOGRAMS {
        let matcher = Matcher::Full((*name).to_owned());
        builder = match builder.set_buckets_for_metric(matcher, buckets) {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, metric = name, "histogram buckets not set");
                return PrometheusBuilder::new();
            }
        };
    }
    builder
}
