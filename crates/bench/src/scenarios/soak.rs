//! The soak test: steady mixed load for a while, and whether the proxy's memory keeps growing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::process::rss_kb;
use crate::proxy::{Launch, Proxy};
use crate::requests::{call, chat_body, one_stream};
use crate::stats::round;

/// Memory growth per 10,000 requests once warm above which the soak test fails.
const SOAK_GROWTH_LIMIT_MB: f64 = 4.0;

/// Steady mixed load (four completions to one stream) at concurrency 16 with the request log
/// on, sampling the proxy's RSS every 10,000 requests.
pub async fn soak(
    program: &Path,
    direct: &str,
    client: &reqwest::Client,
    seconds: u64,
) -> Result<Value> {
    let mut proxy = Proxy::start_ready(&Launch::new(program, direct, true), client).await?;
    let (proxied, pid) = (proxy.url.clone(), proxy.pid);
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

/// Fails when memory kept growing once warm, or when any request failed.
pub fn check(result: &Value) -> Result<()> {
    let growth = result["growth_mb_per_10k_after_warmup"]
        .as_f64()
        .unwrap_or(0.0);
    if growth > SOAK_GROWTH_LIMIT_MB || result["errors"].as_u64() != Some(0) {
        bail!(
            "the soak test failed: {growth} MB per 10,000 requests, {} errors",
            result["errors"]
        );
    }
    Ok(())
}
