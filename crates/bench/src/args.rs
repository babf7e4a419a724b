//! The command line, and how long each part runs (`--smoke` or the full benchmark).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::scenarios::compare::PairSizes;

#[derive(Debug, Parser)]
pub struct Args {
    /// A short run that checks the benchmark works (for CI); its figures mean little.
    #[arg(long)]
    pub smoke: bool,
    /// Concurrent slow streams to hold at once. They reach the target over HTTPS and HTTP/2, as
    /// company endpoints are reached, so the proxy needs one open file per stream (the client's
    /// connection) within this machine type's 20,000.
    #[arg(long, default_value_t = 10_000)]
    pub streams: usize,
    /// Where BENCHMARKS.md and bench-results.json are written.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Only these parts of the benchmark (start time and memory are always measured), for
    /// working on one part: the figures are printed, and BENCHMARKS.md is left as it is.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
    /// Instead of the benchmark: a soak test of this many seconds (steady mixed load with
    /// streams), reporting RSS growth per 10,000 requests once warm; fails when memory keeps
    /// growing, or when fewer than 20,000 requests were served once warm (too short to tell).
    #[arg(long)]
    pub soak: Option<u64>,
    /// Runs each proxy under this command, for profiling it, e.g. `--wrap "valgrind
    /// --tool=massif --massif-out-file=massif.%p.out"` with `--only`. The proxies are then
    /// stopped with SIGTERM, so that the tool writes its output. Use a `profiling` build
    /// (`target/profiling/bench`) for symbols.
    #[arg(long, value_name = "COMMAND")]
    pub wrap: Option<String>,
    /// Also measures this other `llm-proxy` binary (e.g. built from an older commit) against
    /// this build's, in alternating rounds in the same run: added latency and CPU per request
    /// at c=1 (with the latency part) and at c=64 (with the throughput part), request log on
    /// and off.
    #[arg(long, value_name = "PATH", conflicts_with = "soak")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Latency,
    Throughput,
    Streaming,
    SlowStreams,
    FullLogStart,
    Masking,
    /// Pass-through against `TARGET_API=anthropic`: the cost of translating.
    Translation,
    /// Chat completions against `/v1/messages` from the same chat target: the cost of serving
    /// Anthropic's API.
    Messages,
    /// Chat completions against `/v1/responses` from the same chat target: the cost of serving
    /// OpenAI's Responses API.
    Responses,
}

pub struct Sizes {
    pub latency_requests: usize,
    pub throughput_seconds: u64,
    pub stream_runs: usize,
    pub slow_streams: usize,
    pub full_log_calls: usize,
    /// Two proxies side by side: `--baseline`, the masking and translation parts.
    pub pair: PairSizes,
    /// Streams per proxy in each of the translation part's rounds (`pair.latency_rounds`).
    pub translation_streams: usize,
}

impl Args {
    /// Whether `part` runs: every part unless `--only` names some.
    pub fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }

    pub fn sizes(&self) -> Sizes {
        if self.smoke {
            Sizes {
                latency_requests: 200,
                throughput_seconds: 1,
                stream_runs: 3,
                slow_streams: 200,
                full_log_calls: 50,
                pair: PairSizes {
                    latency_rounds: 4,
                    latency_requests: 50,
                    load_rounds: 2,
                    load_round: Duration::from_millis(500),
                },
                translation_streams: 10,
            }
        } else {
            Sizes {
                latency_requests: 10_000,
                throughput_seconds: 10,
                stream_runs: 20,
                slow_streams: self.streams,
                full_log_calls: 5_000,
                pair: PairSizes {
                    latency_rounds: 10,
                    latency_requests: 1_000,
                    load_rounds: 6,
                    load_round: Duration::from_secs(2),
                },
                translation_streams: 200,
            }
        }
    }
}
