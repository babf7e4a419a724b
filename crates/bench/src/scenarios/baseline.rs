//! This build against another `llm-proxy` binary (`--baseline`, e.g. built from an older commit)
//! in the same run, against the same mock target: is a change no worse in added latency and
//! CPU per request?

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::proxy::{Launch, Proxy};
use crate::requests::Api;
use crate::scenarios::compare::{PairSizes, latency_pair, ratios, throughput_pair};
use crate::scenarios::throughput::CONCURRENCY;

/// Which comparisons to run: they follow the latency and throughput parts.
#[derive(Debug, Clone, Copy)]
pub struct Measures {
    pub latency: bool,
    pub throughput: bool,
}

/// For the request log on (the default) and off: both proxies started side by side, then
/// measured in alternating rounds.
pub async fn baseline(
    client: &reqwest::Client,
    direct: &str,
    current: &Path,
    baseline: &Path,
    measures: Measures,
    sizes: PairSizes,
) -> Result<Value> {
    let mut runs = Vec::new();
    for logging in [true, false] {
        let mut proxies = [
            Proxy::start_ready(&Launch::new(current, direct, logging), client).await?,
            Proxy::start_ready(&Launch::new(baseline, direct, logging), client).await?,
        ];
        let pair = [
            proxies[0].endpoint(Api::Chat),
            proxies[1].endpoint(Api::Chat),
        ];
        let latency = if measures.latency {
            let [now, before] = latency_pair(client, direct, pair, sizes).await?;
            json!({
                "rounds": sizes.latency_rounds,
                "requests_per_round": sizes.latency_requests,
                "ratio": ratios(&now, &before, &["added_p50_us", "added_p99_us", "cpu_us_per_request"]),
                "current": now,
                "baseline": before,
            })
        } else {
            Value::Null
        };
        let throughput = if measures.throughput {
            let [now, before] = throughput_pair(client, [&proxies[0], &proxies[1]], sizes).await?;
            json!({
                "concurrency": CONCURRENCY,
                "rounds": sizes.load_rounds,
                "seconds_per_round": sizes.load_round.as_secs_f64(),
                "ratio": ratios(&now, &before, &["rps", "cpu_us_per_request"]),
                "current": now,
                "baseline": before,
            })
        } else {
            Value::Null
        };
        for proxy in &mut proxies {
            proxy.stop().await?;
        }
        runs.push(json!({"logging": logging, "latency": latency, "throughput": throughput}));
    }
    Ok(json!({
        "current_binary": shown(current),
        "binary": shown(baseline),
        "runs": runs,
    }))
}

/// A path as the report shows it: from the working directory when under it.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}
