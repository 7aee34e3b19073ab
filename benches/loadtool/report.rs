//! The table of one run: reads the results folder `bench/run.sh` fills (oha's JSON for the
//! plain and embedding phases, this tool's for streams, CPU ticks and RSS figures written by
//! the script) and prints the side-by-side table and the targets, as Markdown.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

const TARGETS: [&str; 3] = ["mock", "nginx", "gateway"];

/// One run's results folder.
struct Results<'a> {
    dir: &'a Path,
    clock_ticks: f64,
}

/// What one load phase came to.
#[derive(Default, Clone, Copy)]
struct Phase {
    requests: f64,
    errors: f64,
    rate: f64,
    p50: f64,
    p99: f64,
    first_p50: f64,
    first_p99: f64,
}

impl Results<'_> {
    fn text(&self, target: &str, name: &str) -> Option<String> {
        let path = self.dir.join(target).join(name);
        std::fs::read_to_string(path)
            .ok()
            .map(|t| t.trim().to_owned())
    }

    fn number(&self, target: &str, name: &str) -> Option<f64> {
        self.text(target, name)?.parse().ok()
    }

    fn json(&self, target: &str, name: &str) -> Option<Value> {
        serde_json::from_str(&self.text(target, &format!("{name}.json"))?).ok()
    }

    /// A phase measured by oha (`--output-format json`; latencies in seconds). Requests still
    /// in flight when the duration ended ("aborted due to deadline") are not errors.
    fn oha(&self, target: &str, name: &str) -> Option<Phase> {
        let json = self.json(target, name)?;
        let count = |object: &Value, keep: &dyn Fn(&str) -> bool| -> f64 {
            object.as_object().map_or(0.0, |map| {
                map.iter()
                    .filter(|(key, _)| keep(key))
                    .filter_map(|(_, n)| n.as_f64())
                    .sum()
            })
        };
        let statuses = &json["statusCodeDistribution"];
        let transport = &json["errorDistribution"];
        let ok = count(statuses, &|code| code == "200");
        let errors = count(statuses, &|code| code != "200")
            + count(transport, &|kind| !kind.contains("deadline"));
        let ms = |v: &Value| v.as_f64().map_or(f64::NAN, |s| s * 1000.0);
        Some(Phase {
            requests: ok + errors,
            errors,
            rate: json["summary"]["requestsPerSec"]
                .as_f64()
                .unwrap_or(f64::NAN),
            p50: ms(&json["latencyPercentiles"]["p50"]),
            p99: ms(&json["latencyPercentiles"]["p99"]),
            ..Phase::default()
        })
    }

    /// A phase measured by this tool's `streams` or `hold`.
    fn streams(&self, target: &str, name: &str) -> Option<Phase> {
        let json = self.json(target, name)?;
        let ms = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        Some(Phase {
            requests: json["requests"].as_f64()?,
            errors: json["errors"].as_f64()?,
            rate: json["rate"].as_f64().unwrap_or(f64::NAN),
            p50: ms(&json["last_byte_ms"]["p50"]),
            p99: ms(&json["last_byte_ms"]["p99"]),
            first_p50: ms(&json["first_byte_ms"]["p50"]),
            first_p99: ms(&json["first_byte_ms"]["p99"]),
        })
    }

    fn phase(&self, target: &str, name: &str) -> Option<Phase> {
        match name {
            "stream_rate" => self.streams(target, name),
            _ => self.oha(target, name),
        }
    }

    /// CPU time (user + system) per answered request during a phase, in µs.
    fn cpu_per_request(&self, target: &str, name: &str) -> Option<f64> {
        let ticks = self.number(target, &format!("{name}.ticks"))?;
        let phase = self.phase(target, name)?;
        (phase.requests > 0.0).then(|| ticks / self.clock_ticks * 1e6 / phase.requests)
    }

    /// The share of one core the target used during a phase, in %.
    fn busy(&self, target: &str, name: &str) -> Option<f64> {
        let ticks = self.number(target, &format!("{name}.ticks"))?;
        let wall = self.number(target, &format!("{name}.wall"))?;
        Some(ticks / self.clock_ticks / wall * 100.0)
    }

    fn megabytes(&self, target: &str, name: &str) -> Option<f64> {
        self.number(target, name).map(|kb| kb / 1024.0)
    }
}

/// One row: how to read it for a target, and whether "added over the mock" means anything.
struct Row {
    label: &'static str,
    value: Box<dyn Fn(&Results, &str) -> Option<f64>>,
    added: bool,
    digits: usize,
}

fn row(
    label: &'static str,
    added: bool,
    digits: usize,
    value: impl Fn(&Results, &str) -> Option<f64> + 'static,
) -> Row {
    Row {
        label,
        value: Box::new(value),
        added,
        digits,
    }
}

fn rows() -> Vec<Row> {
    let field = |name: &'static str, pick: fn(&Phase) -> f64| {
        move |r: &Results, t: &str| r.phase(t, name).map(|p| pick(&p))
    };
    vec![
        row(
            "plain chat, 1 connection: p50 ms",
            true,
            3,
            field("plain_1c", |p| p.p50),
        ),
        row(
            "plain chat, 1 connection: p99 ms",
            true,
            3,
            field("plain_1c", |p| p.p99),
        ),
        row(
            "plain chat, 1,000 req/s: p50 ms",
            true,
            3,
            field("plain_rate", |p| p.p50),
        ),
        row(
            "plain chat, 1,000 req/s: p99 ms",
            true,
            3,
            field("plain_rate", |p| p.p99),
        ),
        row(
            "plain chat, 1,000 req/s: errors",
            false,
            0,
            field("plain_rate", |p| p.errors),
        ),
        row(
            "plain chat, 64 connections: req/s",
            false,
            0,
            field("plain_max", |p| p.rate),
        ),
        row(
            "plain chat, 64 connections: p99 ms",
            true,
            3,
            field("plain_max", |p| p.p99),
        ),
        row(
            "plain chat, 64 connections: errors",
            false,
            0,
            field("plain_max", |p| p.errors),
        ),
        row(
            "plain chat, 64 connections: target's CPU %",
            false,
            0,
            |r, t| r.busy(t, "plain_max"),
        ),
        row(
            "streams, 1,000/s: first byte p50 ms",
            true,
            3,
            field("stream_rate", |p| p.first_p50),
        ),
        row(
            "streams, 1,000/s: first byte p99 ms",
            true,
            3,
            field("stream_rate", |p| p.first_p99),
        ),
        row(
            "streams, 1,000/s: last byte p50 ms",
            true,
            3,
            field("stream_rate", |p| p.p50),
        ),
        row(
            "streams, 1,000/s: last byte p99 ms",
            true,
            3,
            field("stream_rate", |p| p.p99),
        ),
        row(
            "streams, 1,000/s: errors",
            false,
            0,
            field("stream_rate", |p| p.errors),
        ),
        row(
            "embeddings, 1,000 req/s: p50 ms",
            true,
            3,
            field("embed_rate", |p| p.p50),
        ),
        row(
            "embeddings, 1,000 req/s: p99 ms",
            true,
            3,
            field("embed_rate", |p| p.p99),
        ),
        row(
            "embeddings, 1,000 req/s: errors",
            false,
            0,
            field("embed_rate", |p| p.errors),
        ),
        row(
            "CPU µs per plain request (1,000 req/s)",
            false,
            1,
            |r, t| r.cpu_per_request(t, "plain_rate"),
        ),
        row(
            "CPU µs per plain request (64 connections)",
            false,
            1,
            |r, t| r.cpu_per_request(t, "plain_max"),
        ),
        row("CPU µs per stream (1,000/s)", false, 1, |r, t| {
            r.cpu_per_request(t, "stream_rate")
        }),
        row(
            "CPU µs per embedding request (1,000 req/s)",
            false,
            1,
            |r, t| r.cpu_per_request(t, "embed_rate"),
        ),
        row(
            "RSS idle MB (after start and one request of each kind)",
            false,
            1,
            |r, t| r.megabytes(t, "rss_idle_kb"),
        ),
        row("RSS MB with 2,000 open streams", false, 1, |r, t| {
            r.megabytes(t, "rss_hold_kb")
        }),
        row(
            "  of the 2,000, streams that failed to open",
            false,
            0,
            |r, t| r.number(t, "hold_failed"),
        ),
        row(
            "peak RSS MB before the held streams (VmHWM)",
            false,
            1,
            |r, t| r.megabytes(t, "hwm_load_kb"),
        ),
        row(
            "peak RSS MB over the whole run (VmHWM)",
            false,
            1,
            |r, t| r.megabytes(t, "hwm_kb"),
        ),
        row("RSS MB at the end of the run", false, 1, |r, t| {
            r.megabytes(t, "rss_after_kb")
        }),
    ]
}

fn cell(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".into(),
    }
}

pub fn render(dir: &Path) -> anyhow::Result<String> {
    let clock_ticks = std::fs::read_to_string(dir.join("clk_tck"))?
        .trim()
        .parse()?;
    let results = Results { dir, clock_ticks };
    let mut out = String::new();
    if let Ok(conditions) = std::fs::read_to_string(dir.join("conditions.md")) {
        out.push_str(&conditions);
        out.push('\n');
    }
    out.push_str("| | mock direct | nginx | gateway | gateway / nginx | added by nginx | added by gateway |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for row in rows() {
        let [mock, nginx, gateway] = TARGETS.map(|t| (row.value)(&results, t));
        let ratio = match (gateway, nginx) {
            (Some(g), Some(n)) if n > 0.0 => cell(Some(g / n), 2),
            _ => "–".into(),
        };
        let added = |target: Option<f64>| match (row.added, target, mock) {
            (true, Some(t), Some(m)) => cell(Some(t - m), 3),
            _ => String::new(),
        };
        let cells = [mock, nginx, gateway].map(|value| cell(value, row.digits));
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            cells[0],
            cells[1],
            cells[2],
            ratio,
            added(nginx),
            added(gateway),
        )?;
    }
    out.push('\n');
    out.push_str(&targets(&results)?);
    Ok(out)
}

/// The targets, each with its measure and whether this run met it.
fn targets(r: &Results) -> anyhow::Result<String> {
    let added = |name: &str, pick: fn(&Phase) -> f64| {
        Some(pick(&r.phase("gateway", name)?) - pick(&r.phase("mock", name)?))
    };
    let gateway = |name: &str| r.phase("gateway", name);
    let checks: Vec<(&str, Option<f64>, &str, bool)> = {
        let mut checks = Vec::new();
        let mut check =
            |label: &'static str, value: Option<f64>, unit: &'static str, met: fn(f64) -> bool| {
                checks.push((label, value, unit, value.is_some_and(met)));
            };
        check(
            "added p50, 1 connection ≤ 0.10 ms",
            added("plain_1c", |p| p.p50),
            "ms",
            |v| v <= 0.10,
        );
        check(
            "added p99, 1 connection ≤ 0.3 ms",
            added("plain_1c", |p| p.p99),
            "ms",
            |v| v <= 0.3,
        );
        check(
            "plain 1,000 req/s: errors = 0",
            gateway("plain_rate").map(|p| p.errors),
            "",
            |v| v == 0.0,
        );
        check(
            "plain 1,000 req/s: added p99 ≤ 1 ms",
            added("plain_rate", |p| p.p99),
            "ms",
            |v| v <= 1.0,
        );
        check(
            "streams 1,000/s: errors = 0",
            gateway("stream_rate").map(|p| p.errors),
            "",
            |v| v == 0.0,
        );
        check(
            "streams 1,000/s: added last-byte p99 ≤ 1 ms",
            added("stream_rate", |p| p.p99),
            "ms",
            |v| v <= 1.0,
        );
        check(
            "streams 1,000/s: added first-byte p99 ≤ 0.5 ms",
            added("stream_rate", |p| p.first_p99),
            "ms",
            |v| v <= 0.5,
        );
        let share = match (gateway("plain_max"), r.phase("nginx", "plain_max")) {
            (Some(g), Some(n)) if n.rate > 0.0 => Some(g.rate / n.rate * 100.0),
            _ => None,
        };
        check(
            "64 connections: req/s ≥ 50% of nginx's",
            share,
            "%",
            |v| v >= 50.0,
        );
        let cpu = match (
            r.cpu_per_request("gateway", "plain_rate"),
            r.cpu_per_request("nginx", "plain_rate"),
        ) {
            (Some(g), Some(n)) if n > 0.0 => Some(g / n),
            _ => None,
        };
        check("CPU per plain request ≤ 2× nginx's", cpu, "×", |v| {
            v <= 2.0
        });
        check(
            "RSS idle ≤ 40 MB",
            r.megabytes("gateway", "rss_idle_kb"),
            "MB",
            |v| v <= 40.0,
        );
        check(
            "RSS with 2,000 open streams ≤ 150 MB",
            r.megabytes("gateway", "rss_hold_kb"),
            "MB",
            |v| v <= 150.0,
        );
        checks
    };
    let mut out = String::from("| target | this run | met |\n| --- | ---: | --- |\n");
    for (label, value, unit, met) in checks {
        let digits = if unit == "ms" { 3 } else { 1 };
        writeln!(
            out,
            "| {label} | {} {unit} | {} |",
            cell(value, digits),
            if met { "met" } else { "**not met**" }
        )?;
    }
    Ok(out)
}
