//! Throughput at concurrency 64: requests per second and the proxy's CPU and peak memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::process::{cpu_seconds, peak_rss};
use crate::requests::{call, chat_body};
use crate::stats::{round, round3};

/// The concurrency of the load.
pub const CONCURRENCY: usize = 64;

/// Concurrency 64 for `seconds`, direct then proxy; the proxy's peak RSS while it runs.
pub async fn throughput(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    pid: u32,
    seconds: u64,
) -> Result<(Value, u64)> {
    let duration = Duration::from_secs(seconds);
    let (direct_ok, direct_errors) = load(client, direct, duration).await;
    let direct_rps = direct_ok as f64 / seconds as f64;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(pid, sampling.clone()));
    let cpu_before = cpu_seconds(pid)?;
    let (proxy_ok, proxy_errors) = load(client, proxied, duration).await;
    let proxy_rps = proxy_ok as f64 / seconds as f64;
    // Hundreds of thousands of requests: the clock ticks of /proc/<pid>/stat (10 ms) are lost
    // in the count here.
    let cpu = cpu_seconds(pid)? - cpu_before;
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.await??;
    let proxied_requests = proxy_rps * seconds as f64;
    Ok((
        json!({
            "concurrency": CONCURRENCY, "seconds": seconds,
            "direct_rps": round(direct_rps), "proxy_rps": round(proxy_rps),
            "ratio": round(proxy_rps / direct_rps.max(1.0)),
            "direct_errors": direct_errors, "proxy_errors": proxy_errors,
            "cpu_s_per_1000": round3(cpu / proxied_requests.max(1.0) * 1000.0),
        }),
        peak,
    ))
}

/// [`CONCURRENCY`] workers calling `base` back to back for `duration`: (answered, failed).
pub async fn load(client: &reqwest::Client, base: &str, duration: Duration) -> (u64, u64) {
    let deadline = Instant::now() + duration;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, base, ok, errors) =
                (client.clone(), base.to_owned(), ok.clone(), errors.clone());
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
    (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed))
}
