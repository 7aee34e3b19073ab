//! How long the SSE parser takes over one long line (1, 4 and 16 MB, in 64 KB chunks), with the
//! cap above the line (the whole line is parsed into an event) and at its default 4 MiB (the
//! parser stops there with an error). Time should grow linearly with the size.
//!
//! `cargo bench --bench sse`

use std::collections::VecDeque;
use std::time::Instant;

use glm_gateway::sse::SseParser;

const CHUNK: usize = 64 << 10;

fn main() {
    for megabytes in [1usize, 4, 16] {
        let size = megabytes << 20;
        let mut line = b"data: ".to_vec();
        line.resize(size, b'a');
        line.extend_from_slice(b"\n\n");
        for (label, limit) in [("uncapped", usize::MAX), ("4 MiB cap", 4 << 20)] {
            let started = Instant::now();
            let mut parser = SseParser::new(limit);
            let mut events = VecDeque::new();
            let mut failed = false;
            for chunk in line.chunks(CHUNK) {
                if parser.feed(chunk, &mut events).is_err() {
                    failed = true;
                    break;
                }
            }
            let elapsed = started.elapsed();
            println!(
                "{megabytes:>2} MB line, {label:<9}: {:>8.2} ms ({} event, {})",
                elapsed.as_secs_f64() * 1000.0,
                events.len(),
                if failed { "too large" } else { "parsed" },
            );
        }
    }
}
