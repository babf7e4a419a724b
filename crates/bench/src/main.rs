//! The benchmark: the proxy against the direct path to a fast mock target, in one run, on this
//! machine. It starts `mock-target` and `llm-proxy` (from the same build directory as itself),
//! measures latency, throughput, CPU per request, memory, streaming and many slow streams,
//! with the request log on and off, and writes `BENCHMARKS.md` and `bench-results.json`.
//!
//! `cargo build --release -p llm-proxy -p llm-proxy-bench && target/release/bench` runs it;
//! `--smoke` runs a short version that only checks that everything works.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "bench-access-token";

#[derive(Debug, Parser)]
struct Args {
    /// A short run that checks the benchmark works (for CI); its figures mean little.
    #[arg(long)]
    smoke: bool,
    /// Concurrent slow streams to hold at once. They reach the target over HTTPS and HTTP/2, as
    /// company endpoints are reached, so the proxy needs one open file per stream (the client's
    /// connection) within this machine type's 20,000.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Where BENCHMARKS.md and bench-results.json are written.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Only these parts of the benchmark (start time and memory are always measured), for
    /// working on one part: the figures are printed, and BENCHMARKS.md is left as it is.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Instead of the benchmark: a soak test of this many seconds (steady mixed load with
    /// streams), reporting RSS growth per 10,000 requests; fails when memory keeps growing.
    #[arg(long)]
    soak: Option<u64>,
    /// Runs each proxy under this command, for profiling it, e.g. `--wrap "valgrind
    /// --tool=massif --massif-out-file=massif.%p.out"` with `--only`. The proxies are then
    /// stopped with SIGTERM, so that the tool writes its output. Use a `profiling` build
    /// (`target/profiling/bench`) for symbols.
    #[arg(long, value_name = "COMMAND")]
    wrap: Option<String>,
}

/// `--wrap`, split into words; set once at start.
static WRAP: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Latency,
    Throughput,
    Streaming,
    SlowStreams,
    FullLogStart,
}

/// Where the hand-written reading of the figures starts in BENCHMARKS.md.
const NOTES_HEADING: &str = "## Reading these figures";

/// Memory growth per 10,000 requests once warm above which the soak test fails.
const SOAK_GROWTH_LIMIT_MB: f64 = 4.0;

struct Sizes {
    latency_requests: usize,
    throughput_seconds: u64,
    stream_runs: usize,
    slow_streams: usize,
    full_log_calls: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(wrap) = &args.wrap {
        let _ = WRAP.set(wrap.split_whitespace().map(str::to_owned).collect());
    }
    let sizes = if args.smoke {
        Sizes {
            latency_requests: 200,
            throughput_seconds: 1,
            stream_runs: 3,
            slow_streams: 200,
            full_log_calls: 50,
        }
    } else {
        Sizes {
            latency_requests: 10_000,
            throughput_seconds: 10,
            stream_runs: 20,
            slow_streams: args.streams,
            full_log_calls: 5_000,
        }
    };
    let bin = std::env::current_exe()?
        .parent()
        .context("no build directory")?
        .to_path_buf();
    let (mut mock, mock_addr) =
        spawn_line(Command::new(bin.join("mock-target")), "listening on ").await?;
    let direct = format!("http://{mock_addr}/v1");
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .build()?;

    if let Some(seconds) = args.soak {
        let result = soak(&bin, &direct, &client, seconds).await;
        mock.kill().await?;
        let result = result?;
        std::fs::write(
            args.out.join("soak-results.json"),
            serde_json::to_string_pretty(&result)?,
        )?;
        println!("{}", serde_json::to_string_pretty(&result)?);
        let growth = result["growth_mb_per_10k_after_warmup"]
            .as_f64()
            .unwrap_or(0.0);
        if growth > SOAK_GROWTH_LIMIT_MB || result["errors"].as_u64() != Some(0) {
            bail!(
                "the soak test failed: {growth} MB per 10,000 requests, {} errors",
                result["errors"]
            );
        }
        return Ok(());
    }

    // The slow streams go to an HTTPS twin of the mock, its CA written here.
    let ca_file =
        std::env::temp_dir().join(format!("llm-proxy-bench-ca-{}.pem", std::process::id()));
    let mut tls_command = Command::new(bin.join("mock-target"));
    tls_command.arg("--tls-ca").arg(&ca_file);
    let (mut tls_mock, tls_addr) = spawn_line(tls_command, "listening on ").await?;
    let tls_direct = format!("https://{tls_addr}/v1");
    let ca_pem = std::fs::read(&ca_file)?;

    let runs_part = |part| args.only.is_empty() || args.only.contains(&part);
    let slow_floor = if runs_part(Part::SlowStreams) {
        slow_streams_floor(&bin, sizes.slow_streams).await?
    } else {
        Value::Null
    };
    let full_log_start = if runs_part(Part::FullLogStart) {
        full_log_start(&bin, &direct, &client, sizes.full_log_calls).await?
    } else {
        Value::Null
    };
    let mut runs = Vec::new();
    for logging in [true, false] {
        let started = Instant::now();
        let mut proxy = Proxy::start(&bin, &direct, logging, None).await?;
        let proxied = proxy.url.clone();
        wait_for_models(&client, &proxied).await?;
        let start_ms = started.elapsed().as_secs_f64() * 1000.0;
        let pid = proxy.pid;
        let idle_rss = rss_kb(pid)?;

        let latency = if runs_part(Part::Latency) {
            latency(&client, &direct, &proxied, pid, sizes.latency_requests).await?
        } else {
            Value::Null
        };
        let (throughput, peak_rss) = if runs_part(Part::Throughput) {
            throughput(&client, &direct, &proxied, pid, sizes.throughput_seconds).await?
        } else {
            (Value::Null, 0)
        };
        let (streaming_1, streaming_64) = if runs_part(Part::Streaming) {
            (
                streaming(&client, &direct, &proxied, 1, sizes.stream_runs).await?,
                streaming(&client, &direct, &proxied, 64, 1).await?,
            )
        } else {
            (Value::Null, Value::Null)
        };
        proxy.stop().await?;
        let slow = if runs_part(Part::SlowStreams) {
            let mut tls_proxy = Proxy::start(&bin, &tls_direct, logging, Some(&ca_file)).await?;
            wait_for_models(&client, &tls_proxy.url).await?;
            let slow = slow_streams(&tls_direct, &ca_pem, &tls_proxy, sizes.slow_streams).await?;
            tls_proxy.stop().await?;
            Some(slow)
        } else {
            None
        };
        runs.push(json!({
            "logging": logging,
            "start_to_first_models_ms": round(start_ms),
            "idle_rss_mb": round(idle_rss as f64 / 1024.0),
            "peak_rss_mb": round(peak_rss as f64 / 1024.0),
            "latency": latency,
            "throughput": throughput,
            "streaming_c1": streaming_1,
            "streaming_c64": streaming_64,
            "slow_streams": slow,
        }));
    }
    mock.kill().await?;
    tls_mock.kill().await?;
    let _ = std::fs::remove_file(&ca_file);
    let results = json!({
        "conditions": conditions()?,
        "smoke": args.smoke,
        "runs": runs,
        "slow_streams_floor": slow_floor,
        "full_log_start": full_log_start,
    });
    if !args.only.is_empty() {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    std::fs::write(
        args.out.join("bench-results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let table = markdown(&results);
    // The notes a person wrote under the figures stay.
    let path = args.out.join("BENCHMARKS.md");
    let notes = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find(NOTES_HEADING).map(|at| old[at..].to_owned()))
        .unwrap_or_default();
    std::fs::write(&path, format!("{table}\n{notes}"))?;
    println!("{table}");
    Ok(())
}

/// Steady mixed load (four completions to one stream) at concurrency 16 with the request log
/// on, sampling the proxy's RSS every 10,000 requests.
async fn soak(
    bin: &std::path::Path,
    direct: &str,
    client: &reqwest::Client,
    seconds: u64,
) -> Result<Value> {
    let mut proxy = Proxy::start(bin, direct, true, None).await?;
    let (proxied, pid) = (proxy.url.clone(), proxy.pid);
    wait_for_models(client, &proxied).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, base, done, errors) = (
                client.clone(),
                proxied.clone(),
                done.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let body = chat_body(false);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let result = if i % 5 == 4 {
                        one_stream(&client, &base, 10, 0).await.map(|_| ())
                    } else {
                        call(&client, &base, &body).await.map(|_| ())
                    };
                    match result {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                    i += 1;
                }
            })
        })
        .collect();
    let mut samples: Vec<(u64, u64)> = vec![(0, rss_kb(pid)?)];
    while Instant::now() < deadline {
        let count = done.load(Ordering::Relaxed);
        if count >= samples.last().map_or(0, |s| s.0) + 10_000 {
            samples.push((count, rss_kb(pid)?));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for worker in workers {
        let _ = worker.await;
    }
    let total = done.load(Ordering::Relaxed);
    samples.push((total, rss_kb(pid)?));
    proxy.stop().await?;
    // Warm once the request log's memory ring and SQLite's cache are full: after 10,000.
    let warm = samples.iter().find(|(count, _)| *count >= 10_000).copied();
    let last = samples.last().copied().unwrap_or_default();
    let growth = match warm {
        Some((count, rss)) if last.0 > count => {
            (last.1 as f64 - rss as f64) / 1024.0 / ((last.0 - count) as f64 / 10_000.0)
        }
        _ => 0.0,
    };
    Ok(json!({
        "seconds": seconds,
        "requests": total,
        "errors": errors.load(Ordering::Relaxed),
        "rss_kb_by_requests": samples,
        "growth_mb_per_10k_after_warmup": round(growth),
    }))
}

/// Starts a program and waits for the stdout line with `marker`; returns what follows it.
async fn spawn_line(mut command: Command, marker: &str) -> Result<(Child, String)> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some((_, rest)) = line.split_once(marker) {
                return Ok::<_, anyhow::Error>(rest.trim().to_owned());
            }
        }
        bail!("{marker:?} never printed")
    })
    .await??;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, found))
}

/// Waits until the proxy answers `/v1/models` (the caller times from the spawn).
async fn wait_for_models(client: &reqwest::Client, proxied: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let ok = client
            .get(format!("{proxied}/models"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the proxy never answered /v1/models");
        }
        tokio::task::yield_now().await;
    }
}

fn chat_body(stream: bool) -> String {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "Say something about benchmarks."}]}).to_string()
}

async fn call(client: &reqwest::Client, base: &str, body: &str) -> Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("HTTP {}", response.status());
    }
    response.bytes().await?;
    Ok(started.elapsed())
}

/// Concurrency 1, direct and proxy alternating request by request; CPU of the proxy process
/// over its share of the requests.
async fn latency(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    pid: u32,
    n: usize,
) -> Result<Value> {
    let body = chat_body(false);
    for _ in 0..50 {
        call(client, direct, &body).await?;
        call(client, proxied, &body).await?;
    }
    let cpu_before = cpu_seconds(pid)?;
    let (mut d, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        d.push(us(call(client, direct, &body).await?));
        p.push(us(call(client, proxied, &body).await?));
    }
    let cpu = cpu_seconds(pid)? - cpu_before;
    let (dp50, dp99, pp50, pp99) = (
        percentile(&mut d, 0.5),
        percentile(&mut d, 0.99),
        percentile(&mut p, 0.5),
        percentile(&mut p, 0.99),
    );
    Ok(json!({
        "requests": n,
        "direct_p50_us": dp50, "direct_p99_us": dp99, "proxy_p50_us": pp50, "proxy_p99_us": pp99,
        "added_p50_us": round(pp50 - dp50), "added_p99_us": round(pp99 - dp99),
        "cpu_s_per_1000": round3(cpu / n as f64 * 1000.0),
    }))
}

/// Concurrency 64 for `seconds`, direct then proxy; the proxy's peak RSS while it runs.
async fn throughput(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    pid: u32,
    seconds: u64,
) -> Result<(Value, u64)> {
    let run = |base: String| {
        let client = client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let ok = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..64)
                .map(|_| {
                    let (client, base, ok, errors) =
                        (client.clone(), base.clone(), ok.clone(), errors.clone());
                    tokio::spawn(async move {
                        let body = chat_body(false);
                        while Instant::now() < deadline {
                            match call(&client, &base, &body).await {
                                Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                                Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                    })
                })
                .collect();
            for worker in workers {
                let _ = worker.await;
            }
            (
                ok.load(Ordering::Relaxed) as f64 / seconds as f64,
                errors.load(Ordering::Relaxed),
            )
        }
    };
    let (direct_rps, direct_errors) = run(direct.to_owned()).await;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(pid, sampling.clone()));
    let cpu_before = cpu_seconds(pid)?;
    let (proxy_rps, proxy_errors) = run(proxied.to_owned()).await;
    // Hundreds of thousands of requests: the clock ticks of /proc/<pid>/stat (10 ms) are lost
    // in the count here.
    let cpu = cpu_seconds(pid)? - cpu_before;
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.await??;
    let proxied_requests = proxy_rps * seconds as f64;
    Ok((
        json!({
            "concurrency": 64, "seconds": seconds,
            "direct_rps": round(direct_rps), "proxy_rps": round(proxy_rps),
            "ratio": round(proxy_rps / direct_rps.max(1.0)),
            "direct_errors": direct_errors, "proxy_errors": proxy_errors,
            "cpu_s_per_1000": round3(cpu / proxied_requests.max(1.0) * 1000.0),
        }),
        peak,
    ))
}

/// Time to first byte and mean gap between chunks of a 100-chunk stream, 2 ms apart.
async fn streaming(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    concurrency: usize,
    runs: usize,
) -> Result<Value> {
    let measure = |base: String| {
        let client = client.clone();
        async move {
            let mut ttfb = Vec::new();
            let mut gaps = Vec::new();
            for _ in 0..runs {
                let tasks: Vec<_> = (0..concurrency)
                    .map(|_| {
                        let (client, base) = (client.clone(), base.clone());
                        tokio::spawn(async move { one_stream(&client, &base, 100, 2).await })
                    })
                    .collect();
                for task in tasks {
                    let (first, gap, _) = task.await??;
                    ttfb.push(first);
                    gaps.push(gap);
                }
            }
            Ok::<_, anyhow::Error>((percentile(&mut ttfb, 0.5), mean(&gaps)))
        }
    };
    let (direct_ttfb, direct_gap) = measure(direct.to_owned()).await?;
    let (proxy_ttfb, proxy_gap) = measure(proxied.to_owned()).await?;
    Ok(json!({
        "concurrency": concurrency, "chunks": 100, "delay_ms": 2,
        "direct_ttfb_us": direct_ttfb, "proxy_ttfb_us": proxy_ttfb, "added_ttfb_us": round(proxy_ttfb - direct_ttfb),
        "direct_gap_us": round(direct_gap), "proxy_gap_us": round(proxy_gap), "added_gap_us": round(proxy_gap - direct_gap),
    }))
}

/// One stream: (time to first byte in us, mean gap between chunks in us, longest gap between
/// chunks in us).
async fn one_stream(
    client: &reqwest::Client,
    base: &str,
    chunks: u32,
    delay_ms: u32,
) -> Result<(f64, f64, f64)> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("x-mock-chunks", chunks.to_string())
        .header("x-mock-delay-ms", delay_ms.to_string())
        .body(chat_body(true))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("HTTP {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut first = None;
    let mut last = started;
    let mut longest = Duration::ZERO;
    let mut pieces = 0u32;
    let mut text = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        let now = Instant::now();
        if first.is_some() {
            longest = longest.max(now - last);
        }
        first.get_or_insert(now - started);
        last = now;
        pieces += 1;
        text.extend_from_slice(&piece);
    }
    if !text.ends_with(b"data: [DONE]\n\n") {
        bail!("the stream did not end with [DONE]");
    }
    let first = first.context("empty stream")?;
    let span = last.duration_since(started) - first;
    Ok((
        us(first),
        us(span) / f64::from(pieces.max(2) - 1),
        us(longest),
    ))
}

/// A proxy process started for one part of the benchmark, with its own data directory.
struct Proxy {
    child: Child,
    pid: u32,
    url: String,
    data_dir: PathBuf,
}

impl Proxy {
    async fn start(
        bin: &std::path::Path,
        target: &str,
        logging: bool,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "llm-proxy-bench-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        Self::start_in(bin, target, logging, ca_file, data_dir).await
    }

    /// Starts on `data_dir` as it is: a restart keeps the request log.
    async fn start_in(
        bin: &std::path::Path,
        target: &str,
        logging: bool,
        ca_file: Option<&std::path::Path>,
        data_dir: PathBuf,
    ) -> Result<Self> {
        let mut command = match WRAP.get().and_then(|w| w.split_first()) {
            Some((tool, tool_args)) => {
                let mut command = Command::new(tool);
                command.args(tool_args).arg(bin.join("llm-proxy"));
                command
            }
            None => Command::new(bin.join("llm-proxy")),
        };
        command
            .env_clear()
            .env("PROXY_PORT", "0")
            .env("PROXY_ACCESS_TOKEN", TOKEN)
            .env("TARGET_ENDPOINT", target)
            .env("PROXY_DATA_DIR", &data_dir)
            .env("LOG_LEVEL", "error")
            .env("LOG_REQUESTS", logging.to_string());
        if let Some(ca_file) = ca_file {
            command.env("TARGET_CA_CERT", ca_file);
        }
        let (child, addr) = spawn_line(command, "Listening on:").await?;
        let pid = child.id().context("proxy pid")?;
        Ok(Self {
            child,
            pid,
            url: format!("http://{}/v1", addr.trim()),
            data_dir,
        })
    }

    /// Stops the proxy the way a user does (SIGTERM: the log writes what it holds) and keeps
    /// its data directory.
    async fn terminate(&mut self) -> Result<()> {
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()?;
        self.child.wait().await?;
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        if WRAP.get().is_some() {
            // A profiler writes its output only when the proxy exits on its own.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .status();
            let _ = self.child.wait().await;
        }
        self.child.kill().await?;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        Ok(())
    }
}

/// Start time as a user meets it after a day of work: the proxy restarted on a request log
/// holding `calls` calls with a coding agent's prompt (50 KB each). At start the log is read
/// to rebuild the last day's statistics; the restarted proxy must count every call.
async fn full_log_start(
    bin: &std::path::Path,
    direct: &str,
    client: &reqwest::Client,
    calls: usize,
) -> Result<Value> {
    let mut proxy = Proxy::start(bin, direct, true, None).await?;
    wait_for_models(client, &proxy.url).await?;
    let prompt = "benchmark ".repeat(5 * 1024);
    let body =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}).to_string();
    // Rounds the writer keeps up with (the statistics count a call once it is written): a
    // faster burst would have the log record calls without their bodies, and the stored log
    // would not be the one a day of work leaves.
    let mut sent = 0;
    while sent < calls {
        let round = (calls - sent).min(256);
        futures_util::stream::iter(0..round)
            .map(|_| call(client, &proxy.url, &body))
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        sent += round;
        while model_count(&stats(client, &proxy.url).await?, "gpt-4o") != Some(sent as u64) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let rss_after_calls_kb = rss_kb(proxy.pid)?;
    // Freed memory goes back to the system over jemalloc's decay time (10 s) while idle.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let rss_idle_after_kb = rss_kb(proxy.pid)?;
    proxy.terminate().await?;
    let log_bytes: u64 = std::fs::read_dir(&proxy.data_dir)?
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|meta| meta.len())
        .sum();

    let started = Instant::now();
    let mut restarted = Proxy::start_in(bin, direct, true, None, proxy.data_dir.clone()).await?;
    wait_for_models(client, &restarted.url).await?;
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_rss_kb = peak_rss_so_far(restarted.pid)?;
    let counted = model_count(&stats(client, &restarted.url).await?, "gpt-4o");
    restarted.stop().await?;
    if counted != Some(calls as u64) {
        bail!("the restarted proxy counted {counted:?} calls of {calls}");
    }
    // Every call with its prompt: the log was never behind.
    if log_bytes < (calls * 50_000) as u64 {
        bail!("the log holds {log_bytes} bytes for {calls} calls of 50 KB");
    }
    Ok(json!({
        "calls": calls,
        "log_mb": round(log_bytes as f64 / 1e6),
        "start_to_first_models_ms": round(start_ms),
        "peak_rss_mb": round(peak_rss_kb as f64 / 1024.0),
        "rss_after_calls_mb": round(rss_after_calls_kb as f64 / 1024.0),
        "rss_idle_12s_later_mb": round(rss_idle_after_kb as f64 / 1024.0),
    }))
}

/// The proxy's `/api/stats`.
async fn stats(client: &reqwest::Client, proxied: &str) -> Result<Value> {
    let origin = proxied.trim_end_matches("/v1");
    let response = client
        .get(format!("{origin}/api/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .error_for_status()?;
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

/// Requests for `model` in the last day; the proxy's own `/v1/models` calls are counted apart.
fn model_count(stats: &Value, model: &str) -> Option<u64> {
    stats["models"]
        .as_array()?
        .iter()
        .find(|m| m["model"] == model)?["requests"]
        .as_u64()
}

/// Many slow streams held at once, direct (over one HTTP/2 connection) and then through the
/// proxy (a connection per stream from the client, as SDKs open them; HTTP/2 to the target):
/// the direct run shows what the machine itself can hold.
async fn slow_streams(direct: &str, ca_pem: &[u8], proxy: &Proxy, n: usize) -> Result<Value> {
    let direct = hold_streams(direct, Some(ca_pem), n).await?;
    let pid = proxy.pid;
    let idle_rss = rss_kb(pid)?;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(pid, sampling.clone()));
    let cpu_before = cpu_seconds(pid)?;
    let mut proxy = hold_streams(&proxy.url, None, n).await?;
    proxy["proxy_cpu_s"] = json!(round(cpu_seconds(pid)? - cpu_before));
    proxy["idle_rss_kb"] = json!(idle_rss);
    sampling.store(false, Ordering::Relaxed);
    proxy["peak_rss_kb"] = json!(sampler.await??);
    proxy["direct"] = direct;
    Ok(proxy)
}

/// The same slow streams straight to a bare axum server (the plain mock, `axum::serve`) over
/// HTTP/1, a connection each, as the proxy's clients open them: what the server stack alone holds
/// per connection on this machine, the floor under the proxy's figure (which also holds each
/// stream's target side). A mock of its own, so that its memory starts from idle.
async fn slow_streams_floor(bin: &std::path::Path, n: usize) -> Result<Value> {
    let (mut mock, addr) =
        spawn_line(Command::new(bin.join("mock-target")), "listening on ").await?;
    let pid = mock.id().context("the mock exited")?;
    let idle_rss = rss_kb(pid)?;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(pid, sampling.clone()));
    let mut held = hold_streams(&format!("http://{addr}/v1"), None, n).await?;
    sampling.store(false, Ordering::Relaxed);
    held["peak_rss_kb"] = json!(sampler.await??);
    held["idle_rss_kb"] = json!(idle_rss);
    mock.kill().await?;
    Ok(held)
}

/// Chunks in each slow stream, 50 ms apart: long enough (5 s) for all of them to be open at
/// once even though opening thousands of connections takes a few seconds.
const SLOW_CHUNKS: u32 = 100;

/// `n` streams of [`SLOW_CHUNKS`] chunks 50 ms apart, all started at once: how many completed,
/// failed or stalled, and how many were open (between first and last byte) at the same time.
async fn hold_streams(base: &str, ca_pem: Option<&[u8]>, n: usize) -> Result<Value> {
    let client = match ca_pem {
        // Direct to the HTTPS mock: one HTTP/2 connection carries every stream.
        Some(pem) => reqwest::Client::builder()
            .no_proxy()
            .add_root_certificate(reqwest::Certificate::from_pem(pem)?),
        // To the proxy: a connection per stream, dropped after it.
        None => reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0),
    }
    .build()?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, base) = (client.clone(), base.to_owned());
            tokio::spawn(async move {
                let result = one_stream(&client, &base, SLOW_CHUNKS, 50).await;
                (result, started.elapsed())
            })
        })
        .collect();
    let (mut completed, mut failed, mut stalled) = (0, 0, 0);
    // Why streams failed, counted by message: a figure without its reason cannot be acted on.
    let mut reasons = std::collections::BTreeMap::<String, u32>::new();
    let mut first_bytes = Vec::with_capacity(n);
    let mut gaps = Vec::with_capacity(n);
    // +1 when a stream's first byte came, -1 when it ended, in microseconds from the start.
    let mut changes = Vec::with_capacity(2 * n);
    for task in tasks {
        let (result, ended) = task.await?;
        match result {
            Ok((first, gap, longest)) => {
                gaps.push(gap);
                changes.push((first, 1i64));
                changes.push((us(ended), -1));
                first_bytes.push(first);
                // Once flowing, a gap twenty times the target's spacing is a stall.
                if longest > 1_000_000.0 {
                    stalled += 1;
                } else {
                    completed += 1;
                }
            }
            Err(e) => {
                failed += 1;
                *reasons.entry(format!("{e:#}")).or_default() += 1;
            }
        }
    }
    changes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut peak_open) = (0i64, 0i64);
    for (_, change) in changes {
        open += change;
        peak_open = peak_open.max(open);
    }
    Ok(json!({
        "streams": n, "completed": completed, "failed": failed, "stalled": stalled,
        "failure_reasons": reasons,
        "peak_open": peak_open, "chunks": SLOW_CHUNKS, "delay_ms": 50,
        "seconds": round(started.elapsed().as_secs_f64()),
        "first_byte_p50_ms": round(percentile(&mut first_bytes, 0.5) / 1000.0),
        "first_byte_max_ms": round(percentile(&mut first_bytes, 1.0) / 1000.0),
        // 50 when every chunk came on time; more when they were held up on the way.
        "mean_gap_ms": round(mean(&gaps) / 1000.0),
    }))
}

async fn peak_rss(pid: u32, sampling: Arc<AtomicBool>) -> Result<u64> {
    let mut peak = 0;
    while sampling.load(Ordering::Relaxed) {
        peak = peak.max(rss_kb(pid)?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(peak.max(rss_kb(pid)?))
}

fn rss_kb(pid: u32) -> Result<u64> {
    status_kb(pid, "VmRSS:")
}

/// The most memory the process has held since it started.
fn peak_rss_so_far(pid: u32) -> Result<u64> {
    status_kb(pid, "VmHWM:")
}

/// A kB figure from /proc/<pid>/status.
fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context(field.to_owned())?
        .parse()?)
}

/// User plus system CPU seconds of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn conditions() -> Result<Value> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Ok(json!({
        "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "cpu": cpu,
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "rustc": rustc,
        "proxy_version": env!("CARGO_PKG_VERSION"),
        "date": chrono_free_date(),
    }))
}

/// Today's date from `date`, without a date crate for one line.
fn chrono_free_date() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn markdown(results: &Value) -> String {
    let c = &results["conditions"];
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str(&format!(
        "Measured {} on {} cores ({}), load average {}, {}, proxy {}.{}\n\n",
        c["date"].as_str().unwrap_or_default(),
        c["cores"],
        c["cpu"].as_str().unwrap_or_default(),
        c["load_average"].as_str().unwrap_or_default(),
        c["rustc"].as_str().unwrap_or_default(),
        c["proxy_version"].as_str().unwrap_or_default(),
        if results["smoke"] == true {
            " **Smoke run: figures are not meaningful.**"
        } else {
            ""
        },
    ));
    out.push_str("Client, proxy and mock target share the machine. Reproduce: `cargo build --release -p llm-proxy -p llm-proxy-bench && target/release/bench`.\n\n");
    out.push_str("| Measure | request log on | request log off |\n| --- | --- | --- |\n");
    let runs = results["runs"].as_array().cloned().unwrap_or_default();
    let row = |label: &str, get: &dyn Fn(&Value) -> String| {
        let cells: Vec<String> = runs.iter().map(get).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    out.push_str(&row("Added latency p50, c=1 (us)", &|r| {
        r["latency"]["added_p50_us"].to_string()
    }));
    out.push_str(&row("Added latency p99, c=1 (us)", &|r| {
        r["latency"]["added_p99_us"].to_string()
    }));
    out.push_str(&row("Direct p50 / proxy p50 (us)", &|r| {
        format!(
            "{} / {}",
            r["latency"]["direct_p50_us"], r["latency"]["proxy_p50_us"]
        )
    }));
    out.push_str(&row("Proxy CPU per 1,000 requests, c=1 / c=64 (s)", &|r| {
        format!(
            "{} / {}",
            r["latency"]["cpu_s_per_1000"], r["throughput"]["cpu_s_per_1000"]
        )
    }));
    out.push_str(&row("Throughput c=64, proxy / direct", &|r| {
        format!(
            "{} ({} / {} req/s, {} errors)",
            r["throughput"]["ratio"],
            r["throughput"]["proxy_rps"],
            r["throughput"]["direct_rps"],
            r["throughput"]["proxy_errors"]
        )
    }));
    out.push_str(&row("Idle RSS / peak RSS (MB)", &|r| {
        format!("{} / {}", r["idle_rss_mb"], r["peak_rss_mb"])
    }));
    out.push_str(&row("Start to first /v1/models (ms)", &|r| {
        r["start_to_first_models_ms"].to_string()
    }));
    out.push_str(&row(
        "Stream c=1: added TTFB / added chunk gap (us)",
        &|r| {
            format!(
                "{} / {}",
                r["streaming_c1"]["added_ttfb_us"], r["streaming_c1"]["added_gap_us"]
            )
        },
    ));
    out.push_str(&row(
        "Stream c=64: added TTFB / added chunk gap (us)",
        &|r| {
            format!(
                "{} / {}",
                r["streaming_c64"]["added_ttfb_us"], r["streaming_c64"]["added_gap_us"]
            )
        },
    ));
    out.push_str(&row(
        "Slow streams, 100 chunks 50 ms apart, HTTPS + HTTP/2 to the target (completed / failed / stalled, peak RSS)",
        &|r| {
            let s = &r["slow_streams"];
            if s.is_null() {
                "–".into()
            } else {
                format!(
                    "{} of {} / {} / {}, {} open at once, mean gap {} ms, {} MB (direct: {} / {} / {}, {} open at once, mean gap {} ms)",
                    s["completed"],
                    s["streams"],
                    s["failed"],
                    s["stalled"],
                    s["peak_open"],
                    s["mean_gap_ms"],
                    (s["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0).round(),
                    s["direct"]["completed"],
                    s["direct"]["failed"],
                    s["direct"]["stalled"],
                    s["direct"]["peak_open"],
                    s["direct"]["mean_gap_ms"],
                )
            }
        },
    ));
    let floor = &results["slow_streams_floor"];
    if !floor.is_null() {
        out.push_str(&format!(
            "\nThe floor under the slow streams' memory: the same {} streams straight to a bare axum server (the mock, \
             `axum::serve`) over HTTP/1, a connection each: {} of {} completed, {} failed, {} stalled, peak RSS {} MB \
             (idle {} MB).\n",
            floor["streams"],
            floor["completed"],
            floor["streams"],
            floor["failed"],
            floor["stalled"],
            (floor["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0).round(),
            (floor["idle_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0).round(),
        ));
    }
    let full = &results["full_log_start"];
    if !full.is_null() {
        out.push_str(&format!(
            "\nA full request log: after {} calls with a 50 KB prompt each (16 at a time) the proxy holds {} MB, \
             {} MB after 12 s idle; restarted on them ({} MB stored), {} ms to the first /v1/models, peak RSS {} MB.\n",
            full["calls"],
            full["rss_after_calls_mb"],
            full["rss_idle_12s_later_mb"],
            full["log_mb"],
            full["start_to_first_models_ms"],
            full["peak_rss_mb"],
        ));
    }
    out.push_str("\nRaw figures: `bench-results.json`.\n");
    out
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    round(values[index])
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
