//! Many slow streams held at once: through the proxy, direct, and the floor a bare server sets.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::mock;
use crate::process::{cpu_seconds, peak_rss, rss_kb};
use crate::proxy::Proxy;
use crate::requests::one_stream;
use crate::stats::{mean, percentile, round, us};

/// Chunks in each slow stream, 50 ms apart: long enough (5 s) for all of them to be open at
/// once even though opening thousands of connections takes a few seconds.
const SLOW_CHUNKS: u32 = 100;

/// Many slow streams held at once, direct (over one HTTP/2 connection) and then through the
/// proxy (a connection per stream from the client, as SDKs open them; HTTP/2 to the target):
/// the direct run shows what the machine itself can hold.
pub async fn slow_streams(direct: &str, ca_pem: &[u8], proxy: &Proxy, n: usize) -> Result<Value> {
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
pub async fn slow_streams_floor(mock_program: &Path, n: usize) -> Result<Value> {
    let (mut mock, url) = mock::start(mock_program).await?;
    let pid = mock.id().context("the mock exited")?;
    let idle_rss = rss_kb(pid)?;
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(peak_rss(pid, sampling.clone()));
    let mut held = hold_streams(&url, None, n).await?;
    sampling.store(false, Ordering::Relaxed);
    held["peak_rss_kb"] = json!(sampler.await??);
    held["idle_rss_kb"] = json!(idle_rss);
    mock.kill().await?;
    Ok(held)
}

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
    let mut reasons = BTreeMap::<String, u32>::new();
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
