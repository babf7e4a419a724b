//! Start time on a full request log: what a restart costs after a day of work.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::process::{peak_rss_so_far, rss_kb};
use crate::proxy::{Launch, Proxy, TOKEN, wait_for_models};
use crate::requests::call;
use crate::stats::round;

/// Start time as a user meets it after a day of work: the proxy restarted on a request log
/// holding `calls` calls with a coding agent's prompt (50 KB each). At start the log is read
/// to rebuild the last day's statistics; the restarted proxy must count every call.
pub async fn full_log_start(
    program: &Path,
    direct: &str,
    client: &reqwest::Client,
    calls: usize,
) -> Result<Value> {
    let launch = Launch::new(program, direct, true);
    let mut proxy = Proxy::start_ready(&launch, client).await?;
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
    let mut restarted = Proxy::start_in(&launch, proxy.data_dir.clone()).await?;
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
