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
/// Requests after which the proxy is warm: the request log's memory ring and SQLite's cache
/// are full.
const WARM_AFTER: u64 = 10_000;
/// Requests that must be served once warm for the growth to be measured at all: over fewer,
/// a few hundred KB of allocator noise would read as megabytes per 10,000, and over none there
/// is nothing to read.
const MIN_WARM_REQUESTS: u64 = 20_000;

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
    let warm_requests = requests_after_warmup(&samples);
    let growth = growth_after_warmup(&samples);
    Ok(json!({
        "seconds": seconds,
        "requests": total,
        "errors": errors.load(Ordering::Relaxed),
        "rss_kb_by_requests": samples,
        "requests_after_warmup": warm_requests,
        // Null when too few requests were served once warm to measure it.
        "growth_mb_per_10k_after_warmup": growth.map(round),
    }))
}

/// The first sample taken once warm (at or after [`WARM_AFTER`] requests).
fn warm_sample(samples: &[(u64, u64)]) -> Option<(u64, u64)> {
    samples
        .iter()
        .find(|(count, _)| *count >= WARM_AFTER)
        .copied()
}

/// Requests served between the first warm sample and the last sample.
fn requests_after_warmup(samples: &[(u64, u64)]) -> u64 {
    match (warm_sample(samples), samples.last()) {
        (Some((warm, _)), Some((last, _))) => last.saturating_sub(warm),
        _ => 0,
    }
}

/// RSS growth in MB per 10,000 requests from the first warm sample to the last; `None` when
/// fewer than [`MIN_WARM_REQUESTS`] lie between them.
fn growth_after_warmup(samples: &[(u64, u64)]) -> Option<f64> {
    let (warm_count, warm_rss) = warm_sample(samples)?;
    let (last_count, last_rss) = samples.last().copied()?;
    let span = last_count.saturating_sub(warm_count);
    if span < MIN_WARM_REQUESTS {
        return None;
    }
    Some((last_rss as f64 - warm_rss as f64) / 1024.0 / (span as f64 / 10_000.0))
}

/// Fails when any request failed, when too few requests were served once warm to measure the
/// growth, or when memory kept growing once warm.
pub fn check(result: &Value) -> Result<()> {
    let errors = result["errors"].as_u64().unwrap_or(u64::MAX);
    if errors != 0 {
        bail!(
            "the soak test failed: {} of its requests failed",
            result["errors"]
        );
    }
    let Some(growth) = result["growth_mb_per_10k_after_warmup"].as_f64() else {
        bail!(
            "the soak test measured no memory growth: {} requests in {} s, {} of them once warm \
             (after {WARM_AFTER}); it needs at least {MIN_WARM_REQUESTS} once warm: run it \
             longer (--soak SECONDS)",
            result["requests"],
            result["seconds"],
            result["requests_after_warmup"]
        );
    };
    if growth > SOAK_GROWTH_LIMIT_MB {
        bail!(
            "the soak test failed: memory grew {growth} MB per 10,000 requests once warm \
             (limit {SOAK_GROWTH_LIMIT_MB} MB)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A soak result as [`soak`] reports it, from its samples.
    fn result(samples: &[(u64, u64)], errors: u64) -> Value {
        json!({
            "seconds": 30,
            "requests": samples.last().map_or(0, |s| s.0),
            "errors": errors,
            "rss_kb_by_requests": samples,
            "requests_after_warmup": requests_after_warmup(samples),
            "growth_mb_per_10k_after_warmup": growth_after_warmup(samples).map(round),
        })
    }

    #[test]
    fn a_run_that_never_warms_up_fails_instead_of_reporting_no_growth() {
        let samples = [(0, 26_000), (9_500, 30_000)];
        assert_eq!(growth_after_warmup(&samples), None);
        let err = check(&result(&samples, 0)).unwrap_err().to_string();
        assert!(
            err.contains("measured no memory growth") && err.contains("0 of them once warm"),
            "{err}"
        );
    }

    #[test]
    fn too_few_requests_once_warm_fail_instead_of_reporting_a_guess() {
        // Warm at 10,018, last at 29,000: 18,982 once warm, below the 20,000 needed.
        let samples = [(0, 26_000), (10_018, 30_000), (29_000, 30_000)];
        assert_eq!(growth_after_warmup(&samples), None);
        let err = check(&result(&samples, 0)).unwrap_err().to_string();
        assert!(err.contains("18982 of them once warm"), "{err}");
    }

    #[test]
    fn growth_is_measured_from_the_first_warm_sample_to_the_last() {
        // 30,000 requests once warm, 3 MB more: 1 MB per 10,000. The growth while warming up
        // (26 MB to 30 MB) does not count.
        let samples = [
            (0, 26_000),
            (10_000, 30_000),
            (20_000, 31_024),
            (40_000, 33_072),
        ];
        assert_eq!(growth_after_warmup(&samples), Some(1.0));
        check(&result(&samples, 0)).unwrap();
    }

    #[test]
    fn steady_growth_or_a_failed_request_fails_the_soak() {
        // 5 MB per 10,000 once warm, above the 4 MB limit.
        let growing = [(0, 26_000), (10_000, 30_000), (30_000, 40_240)];
        assert_eq!(growth_after_warmup(&growing), Some(5.0));
        let err = check(&result(&growing, 0)).unwrap_err().to_string();
        assert!(err.contains("grew 5 MB per 10,000"), "{err}");

        let steady = [(0, 26_000), (10_000, 30_000), (30_000, 30_000)];
        let err = check(&result(&steady, 1)).unwrap_err().to_string();
        assert!(err.contains("1 of its requests failed"), "{err}");
    }
}
