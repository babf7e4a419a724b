//! Latency at concurrency 1: the proxy against the direct path, request by request.

use anyhow::Result;
use serde_json::{Value, json};

use crate::process::cpu_seconds;
use crate::requests::{Api, call_as};
use crate::stats::{percentile, round, round3, us};

/// Concurrency 1, direct and proxy alternating request by request; CPU of the proxy process
/// over its share of the requests.
pub async fn latency(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    pid: u32,
    n: usize,
) -> Result<Value> {
    warm_up(client, direct, proxied, Api::Chat).await?;
    let cpu_before = cpu_seconds(pid)?;
    let (mut d, mut p) = alternate(client, direct, proxied, Api::Chat, n).await?;
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

/// Fifty requests each way first: connections open, caches warm.
pub async fn warm_up(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    api: Api,
) -> Result<()> {
    let (direct_body, body) = (Api::Chat.body(false), api.body(false));
    for _ in 0..50 {
        call_as(client, direct, Api::Chat, &direct_body).await?;
        call_as(client, proxied, api, &body).await?;
    }
    Ok(())
}

/// `n` requests each way, direct and proxy (its client speaking `api`) alternating: their
/// times in us (direct, proxy).
pub async fn alternate(
    client: &reqwest::Client,
    direct: &str,
    proxied: &str,
    api: Api,
    n: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (direct_body, body) = (Api::Chat.body(false), api.body(false));
    let (mut d, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        d.push(us(call_as(client, direct, Api::Chat, &direct_body).await?));
        p.push(us(call_as(client, proxied, api, &body).await?));
    }
    Ok((d, p))
}
