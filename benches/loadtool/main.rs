//! The tools `bench/run.sh` drives for its side-by-side benchmark of the mock upstream direct,
//! nginx and the gateway: the mock upstream itself, the streamed-request load (time to first
//! and last byte at a fixed rate; many streams held open), and the report that turns a run's
//! results into one table. Each runs on one thread, so the script can pin it to one core.
//!
//! `cargo bench --bench loadtool --no-run` builds it; `bench/run.sh` is the way to use it.

mod load;
mod mock;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load tools for bench/run.sh")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// What `cargo bench` passes to every benchmark; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Command {
    /// A GLM upstream answering fixed bytes.
    Mock {
        #[arg(long)]
        listen: SocketAddr,
        /// How long a `#hold` stream waits after its first chunk.
        #[arg(long, default_value_t = 10)]
        hold_secs: u64,
    },
    /// Streamed requests at a fixed rate; prints JSON with first- and last-byte latencies.
    Streams {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
    },
    /// Opens many streams and keeps them open; writes `ready_file` once they all are.
    Hold {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, default_value_t = 2000)]
        streams: u32,
        /// Streams opened a second (the gateway admits 512 requests at once by default).
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long)]
        ready_file: PathBuf,
    },
    /// Prints the table of a run's results folder.
    Report {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct TargetArgs {
    #[arg(long)]
    url: String,
    /// The bearer key, if the target wants one.
    #[arg(long, env = "LOADTOOL_KEY", hide_env_values = true)]
    key: Option<String>,
    /// A file holding the request body.
    #[arg(long)]
    body_file: PathBuf,
}

impl TargetArgs {
    fn target(self) -> anyhow::Result<load::Target> {
        Ok(load::Target {
            url: self.url,
            key: self.key,
            body: Bytes::from(std::fs::read(&self.body_file)?),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        println!("loadtool: nothing to do (run bench/run.sh)");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match command {
        Command::Mock { listen, hold_secs } => {
            runtime.block_on(mock::run(listen, Duration::from_secs(hold_secs)))
        }
        Command::Streams {
            target,
            rate,
            duration_secs,
        } => {
            let report = runtime.block_on(load::fixed_rate(
                target.target()?,
                rate,
                Duration::from_secs(duration_secs),
            ))?;
            println!("{report}");
            Ok(())
        }
        Command::Hold {
            target,
            streams,
            rate,
            ready_file,
        } => {
            let report =
                runtime.block_on(load::hold(target.target()?, streams, rate, ready_file))?;
            println!("{report}");
            Ok(())
        }
        Command::Report { dir } => {
            print!("{}", report::render(&dir)?);
            Ok(())
        }
    }
}
