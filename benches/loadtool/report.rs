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
                    .fold(0.0, |sum, n| sum + n)
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

/// Where a row's figure comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A latency of a phase, ms.
    Latency(&'static str, fn(&Phase) -> f64),
    /// A count or rate of a phase.
    Count(&'static str, fn(&Phase) -> f64),
    /// CPU µs per request of a phase.
    Cpu(&'static str),
    /// The share of a core during a phase, %.
    Busy(&'static str),
    /// A memory figure the script wrote, kB, shown in MB.
    Memory(&'static str),
    /// A number the script wrote.
    Number(&'static str),
}

impl Source {
    fn read(self, r: &Results, target: &str) -> Option<f64> {
        match self {
            Self::Latency(phase, pick) | Self::Count(phase, pick) => {
                r.phase(target, phase).map(|p| pick(&p))
            }
            Self::Cpu(phase) => r.cpu_per_request(target, phase),
            Self::Busy(phase) => r.busy(target, phase),
            Self::Memory(name) => r.megabytes(target, name),
            Self::Number(name) => r.number(target, name),
        }
    }

    fn digits(self) -> usize {
        match self {
            Self::Latency(..) => 3,
            Self::Count(..) | Self::Busy(_) | Self::Number(_) => 0,
            Self::Cpu(_) | Self::Memory(_) => 1,
        }
    }
}

const P50: fn(&Phase) -> f64 = |p| p.p50;
const P99: fn(&Phase) -> f64 = |p| p.p99;
const FIRST_P50: fn(&Phase) -> f64 = |p| p.first_p50;
const FIRST_P99: fn(&Phase) -> f64 = |p| p.first_p99;
const ERRORS: fn(&Phase) -> f64 = |p| p.errors;
const RATE: fn(&Phase) -> f64 = |p| p.rate;

/// The table's rows. "Added" (target minus the mock direct) is shown for latencies.
#[rustfmt::skip]
const ROWS: &[(&str, Source)] = &[
    ("plain chat, 1 connection: p50 ms", Source::Latency("plain_1c", P50)),
    ("plain chat, 1 connection: p99 ms", Source::Latency("plain_1c", P99)),
    ("plain chat, 1,000 req/s: p50 ms", Source::Latency("plain_rate", P50)),
    ("plain chat, 1,000 req/s: p99 ms", Source::Latency("plain_rate", P99)),
    ("plain chat, 1,000 req/s: errors", Source::Count("plain_rate", ERRORS)),
    ("plain chat, 64 connections: req/s", Source::Count("plain_max", RATE)),
    ("plain chat, 64 connections: p99 ms", Source::Latency("plain_max", P99)),
    ("plain chat, 64 connections: errors", Source::Count("plain_max", ERRORS)),
    ("plain chat, 64 connections: server's CPU %", Source::Busy("plain_max")),
    ("streams, 1,000/s: first byte p50 ms", Source::Latency("stream_rate", FIRST_P50)),
    ("streams, 1,000/s: first byte p99 ms", Source::Latency("stream_rate", FIRST_P99)),
    ("streams, 1,000/s: last byte p50 ms", Source::Latency("stream_rate", P50)),
    ("streams, 1,000/s: last byte p99 ms", Source::Latency("stream_rate", P99)),
    ("streams, 1,000/s: errors", Source::Count("stream_rate", ERRORS)),
    ("embeddings, 1,000 req/s: p50 ms", Source::Latency("embed_rate", P50)),
    ("embeddings, 1,000 req/s: p99 ms", Source::Latency("embed_rate", P99)),
    ("embeddings, 1,000 req/s: errors", Source::Count("embed_rate", ERRORS)),
    ("CPU µs per plain request, 1,000 req/s", Source::Cpu("plain_rate")),
    ("CPU µs per plain request, 64 connections", Source::Cpu("plain_max")),
    ("CPU µs per stream, 1,000/s", Source::Cpu("stream_rate")),
    ("CPU µs per embeddings request, 1,000 req/s", Source::Cpu("embed_rate")),
    ("RSS MB idle (after one request of each kind)", Source::Memory("rss_idle_kb")),
    ("RSS MB with 2,000 open streams", Source::Memory("rss_hold_kb")),
    ("streams of the 2,000 that failed to open", Source::Number("hold_failed")),
    ("peak RSS MB before the held streams (VmHWM)", Source::Memory("hwm_load_kb")),
    ("peak RSS MB over the run (VmHWM)", Source::Memory("hwm_kb")),
    ("RSS MB at the end of the run", Source::Memory("rss_after_kb")),
];

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
    for &(label, source) in ROWS {
        let [mock, nginx, gateway] = TARGETS.map(|t| source.read(&results, t));
        let ratio = match (gateway, nginx) {
            (Some(g), Some(n)) if n > 0.0 => cell(Some(g / n), 2),
            _ => "–".into(),
        };
        let added = |target: Option<f64>| match (source, target, mock) {
            (Source::Latency(..), Some(t), Some(m)) => cell(Some(t - m), 3),
            _ => String::new(),
        };
        let [mock, nginx_cell, gateway_cell] =
            [mock, nginx, gateway].map(|value| cell(value, source.digits()));
        let (by_nginx, by_gateway) = (added(nginx), added(gateway));
        writeln!(
            out,
            "| {label} | {mock} | {nginx_cell} | {gateway_cell} | {ratio} | {by_nginx} | {by_gateway} |"
        )?;
    }
    out.push('\n');
    out.push_str(&targets(&results)?);
    Ok(out)
}

/// A target: what it says, its measure (unit, digits) and the bound it must meet.
struct Check {
    label: &'static str,
    value: Option<f64>,
    unit: &'static str,
    met: bool,
}

fn check(label: &'static str, value: Option<f64>, unit: &'static str, at_most: f64) -> Check {
    Check {
        label,
        value,
        unit,
        met: value.is_some_and(|v| v <= at_most),
    }
}

/// The targets, each with this run's measure and whether it met it.
fn targets(r: &Results) -> anyhow::Result<String> {
    let added = |name: &str, pick: fn(&Phase) -> f64| {
        Some(pick(&r.phase("gateway", name)?) - pick(&r.phase("mock", name)?))
    };
    let errors = |name: &str| r.phase("gateway", name).map(|p| p.errors);
    let ratio = |g: Option<f64>, n: Option<f64>| match (g, n) {
        (Some(g), Some(n)) if n > 0.0 => Some(g / n),
        _ => None,
    };
    let throughput = |t: &str| r.phase(t, "plain_max").map(|p| p.rate);
    let share = ratio(throughput("gateway"), throughput("nginx")).map(|s| s * 100.0);
    let cpu = |t: &str| r.cpu_per_request(t, "plain_rate");
    #[rustfmt::skip]
    let mut checks = vec![
        check("added p50, 1 connection ≤ 0.10 ms", added("plain_1c", P50), "ms", 0.10),
        check("added p99, 1 connection ≤ 0.3 ms", added("plain_1c", P99), "ms", 0.3),
        check("plain 1,000 req/s: no errors", errors("plain_rate"), "", 0.0),
        check("plain 1,000 req/s: added p99 ≤ 1 ms", added("plain_rate", P99), "ms", 1.0),
        check("streams 1,000/s: no errors", errors("stream_rate"), "", 0.0),
        check("streams 1,000/s: added last-byte p99 ≤ 1 ms", added("stream_rate", P99), "ms", 1.0),
        check("streams 1,000/s: added first-byte p99 ≤ 0.5 ms", added("stream_rate", FIRST_P99), "ms", 0.5),
        check("CPU per plain request ≤ 2× nginx's", ratio(cpu("gateway"), cpu("nginx")), "×", 2.0),
        check("RSS idle ≤ 40 MB", r.megabytes("gateway", "rss_idle_kb"), "MB", 40.0),
        check("RSS with 2,000 open streams ≤ 150 MB", r.megabytes("gateway", "rss_hold_kb"), "MB", 150.0),
    ];
    // The one bound from below.
    checks.insert(
        7,
        Check {
            label: "64 connections: req/s ≥ 50% of nginx's",
            value: share,
            unit: "%",
            met: share.is_some_and(|s| s >= 50.0),
        },
    );
    let mut out = String::from("| target | this run | met |\n| --- | ---: | --- |\n");
    for Check {
        label,
        value,
        unit,
        met,
    } in checks
    {
        let digits = match unit {
            "ms" => 3,
            "" => 0,
            _ => 1,
        };
        let verdict = if met { "met" } else { "**not met**" };
        writeln!(
            out,
            "| {label} | {} {unit} | {verdict} |",
            cell(value, digits)
        )?;
    }
    Ok(out)
}
