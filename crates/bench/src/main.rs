//! The benchmark: the proxy against the direct path to a fast mock target, in one run, on this
//! machine. It starts `mock-target` and `llm-proxy` (from the same build directory as itself),
//! measures latency, throughput, CPU per request, memory, streaming and many slow streams,
//! with the request log on and off, the cost of masking and of translating to Anthropic's API, and writes `BENCHMARKS.md` and `bench-results.json`.
//!
//! `cargo build --release -p llm-proxy -p llm-proxy-bench && target/release/bench` runs it;
//! `--smoke` runs a short version that only checks that everything works.

mod args;
mod mock;
mod process;
mod proxy;
mod report;
mod requests;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use serde_json::{Value, json};

use args::{Args, Part, Sizes};
use mock::TlsMock;
use process::rss_kb;
use proxy::{Launch, Proxy, wait_for_models};
use requests::Api;
use scenarios::{
    baseline, client_api, full_log, latency, masking, slow_streams, soak, streaming, throughput,
    translation,
};
use stats::round;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    proxy::set_wrap(args.wrap.as_deref());
    if let Some(path) = &args.baseline {
        ensure!(
            path.is_file(),
            "--baseline {}: no such file",
            path.display()
        );
    }
    let programs = Programs::beside_this()?;
    let (mut mock, direct) = mock::start(&programs.mock).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .build()?;
    if let Some(seconds) = args.soak {
        let result = soak::soak(&programs.proxy, &direct, &client, seconds).await;
        mock.kill().await?;
        let result = result?;
        report::write_soak(&args.out, &result)?;
        println!("{}", serde_json::to_string_pretty(&result)?);
        return soak::check(&result);
    }
    let sizes = args.sizes();
    let bench = Bench {
        args,
        sizes,
        programs,
        direct,
        client,
    };
    let results = bench.run().await?;
    mock.kill().await?;
    write_report(&bench.args, &results)
}

/// The programs of this build, beside the bench itself.
struct Programs {
    proxy: PathBuf,
    mock: PathBuf,
}

impl Programs {
    fn beside_this() -> Result<Self> {
        let exe = std::env::current_exe()?;
        let bin = exe.parent().context("no build directory")?;
        Ok(Self {
            proxy: bin.join("llm-proxy"),
            mock: bin.join("mock-target"),
        })
    }
}

/// What the parts share: the flags, the programs, the plain mock target and the client.
struct Bench {
    args: Args,
    sizes: Sizes,
    programs: Programs,
    direct: String,
    client: reqwest::Client,
}

impl Bench {
    /// Every part that runs, in the order that keeps each one's figures clean.
    async fn run(&self) -> Result<Value> {
        // The slow streams go to an HTTPS twin of the mock.
        let tls = TlsMock::start(&self.programs.mock).await?;
        let slow_floor = if self.args.runs(Part::SlowStreams) {
            slow_streams::slow_streams_floor(&self.programs.mock, self.sizes.slow_streams).await?
        } else {
            Value::Null
        };
        let full_log_start = if self.args.runs(Part::FullLogStart) {
            let (program, calls) = (&self.programs.proxy, self.sizes.full_log_calls);
            full_log::full_log_start(program, &self.direct, &self.client, calls).await?
        } else {
            Value::Null
        };
        let mut runs = Vec::new();
        for logging in [true, false] {
            runs.push(self.run_with_logging(&tls, logging).await?);
        }
        let masking = if self.args.runs(Part::Masking) {
            let (program, sizes) = (&self.programs.proxy, self.sizes.pair);
            masking::masking(&self.client, &self.direct, program, sizes).await?
        } else {
            Value::Null
        };
        let translation = if self.args.runs(Part::Translation) {
            let (program, sizes) = (&self.programs.proxy, self.sizes.pair);
            let streams = self.sizes.translation_streams;
            translation::translation(&self.client, &self.direct, program, sizes, streams).await?
        } else {
            Value::Null
        };
        let mut served = Vec::new();
        for (api, part) in [
            (Api::Messages, Part::Messages),
            (Api::Responses, Part::Responses),
        ] {
            served.push(if self.args.runs(part) {
                let (program, sizes) = (&self.programs.proxy, self.sizes.pair);
                let streams = self.sizes.translation_streams;
                let (client, direct) = (&self.client, &self.direct);
                client_api::client_api(api, client, direct, program, sizes, streams).await?
            } else {
                Value::Null
            });
        }
        let (responses, messages) = (served.pop(), served.pop());
        let baseline = self.baseline().await?;
        tls.stop().await?;
        let mut results = json!({
            "conditions": report::conditions()?,
            "smoke": self.args.smoke,
            "runs": runs,
            "slow_streams_floor": slow_floor,
            "full_log_start": full_log_start,
            "masking": masking,
            "translation": translation,
            "messages": messages.unwrap_or_default(),
            "responses": responses.unwrap_or_default(),
        });
        if let Some(baseline) = baseline {
            results["baseline"] = baseline;
        }
        Ok(results)
    }

    /// Start time, memory and the per-request parts with the request log on or off.
    async fn run_with_logging(&self, tls: &TlsMock, logging: bool) -> Result<Value> {
        let (client, direct, sizes) = (&self.client, self.direct.as_str(), &self.sizes);
        let started = Instant::now();
        let mut proxy = Proxy::start(&Launch::new(&self.programs.proxy, direct, logging)).await?;
        let proxied = proxy.url.clone();
        wait_for_models(client, &proxied).await?;
        let start_ms = started.elapsed().as_secs_f64() * 1000.0;
        let pid = proxy.pid;
        let idle_rss = rss_kb(pid)?;

        let latency = if self.args.runs(Part::Latency) {
            latency::latency(client, direct, &proxied, pid, sizes.latency_requests).await?
        } else {
            Value::Null
        };
        let (throughput, peak_rss) = if self.args.runs(Part::Throughput) {
            let seconds = sizes.throughput_seconds;
            throughput::throughput(client, direct, &proxied, pid, seconds).await?
        } else {
            (Value::Null, 0)
        };
        let (streaming_1, streaming_64) = if self.args.runs(Part::Streaming) {
            (
                streaming::streaming(client, direct, &proxied, 1, sizes.stream_runs).await?,
                streaming::streaming(client, direct, &proxied, 64, 1).await?,
            )
        } else {
            (Value::Null, Value::Null)
        };
        proxy.stop().await?;
        let slow = if self.args.runs(Part::SlowStreams) {
            let launch = Launch::new(&self.programs.proxy, &tls.url, logging).ca_file(&tls.ca_file);
            let mut tls_proxy = Proxy::start_ready(&launch, client).await?;
            let n = sizes.slow_streams;
            let slow = slow_streams::slow_streams(&tls.url, &tls.ca_pem, &tls_proxy, n).await?;
            tls_proxy.stop().await?;
            Some(slow)
        } else {
            None
        };
        Ok(json!({
            "logging": logging,
            "start_to_first_models_ms": round(start_ms),
            "idle_rss_mb": round(idle_rss as f64 / 1024.0),
            "peak_rss_mb": round(peak_rss as f64 / 1024.0),
            "latency": latency,
            "throughput": throughput,
            "streaming_c1": streaming_1,
            "streaming_c64": streaming_64,
            "slow_streams": slow,
        }))
    }

    /// `--baseline`: the latency and throughput parts that run, for both binaries.
    async fn baseline(&self) -> Result<Option<Value>> {
        let Some(path) = &self.args.baseline else {
            return Ok(None);
        };
        let measures = baseline::Measures {
            latency: self.args.runs(Part::Latency),
            throughput: self.args.runs(Part::Throughput),
        };
        if !measures.latency && !measures.throughput {
            return Ok(None);
        }
        let (current, sizes) = (&self.programs.proxy, self.sizes.pair);
        let result =
            baseline::baseline(&self.client, &self.direct, current, path, measures, sizes).await?;
        Ok(Some(result))
    }
}

/// With `--only`, the figures are printed and nothing is written; else both files are.
fn write_report(args: &Args, results: &Value) -> Result<()> {
    if !args.only.is_empty() {
        println!("{}", serde_json::to_string_pretty(results)?);
        print!("{}", report::comparisons(results));
        return Ok(());
    }
    println!("{}", report::write(&args.out, results)?);
    Ok(())
}
