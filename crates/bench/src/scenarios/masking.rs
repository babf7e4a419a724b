//! The cost of masking the target credential: the proxy searches every answer of the target
//! for its key only when it has one, so the same proxy is measured without a key and with one.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use crate::proxy::{Launch, Proxy};
use crate::requests::Api;
use crate::scenarios::compare::{PairSizes, differences, latency_pair};

/// A target key of 40 characters, the length of common API keys. The mock accepts any
/// `Authorization` and never echoes it, so this measures the search, not a replacement.
pub const TARGET_KEY: &str = "bench-target-key-0123456789abcdefghijklm";

/// With the request log on (the default): both proxies side by side, measured in alternating
/// rounds at c=1.
pub async fn masking(
    client: &reqwest::Client,
    direct: &str,
    program: &Path,
    sizes: PairSizes,
) -> Result<Value> {
    let without = Launch::new(program, direct, true);
    let with = without.clone().target_api_key(TARGET_KEY);
    let mut proxies = [
        Proxy::start_ready(&without, client).await?,
        Proxy::start_ready(&with, client).await?,
    ];
    let [without, with] = latency_pair(
        client,
        direct,
        [
            proxies[0].endpoint(Api::Chat),
            proxies[1].endpoint(Api::Chat),
        ],
        sizes,
    )
    .await?;
    for proxy in &mut proxies {
        proxy.stop().await?;
    }
    Ok(json!({
        "logging": true,
        "key_chars": TARGET_KEY.len(),
        "rounds": sizes.latency_rounds,
        "requests_per_round": sizes.latency_requests,
        "difference": differences(&with, &without, &["added_p50_us", "added_p99_us", "cpu_us_per_request"]),
        "without_key": without,
        "with_key": with,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_has_40_characters() {
        assert_eq!(super::TARGET_KEY.len(), 40);
    }
}
