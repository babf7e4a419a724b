//! Streams of 100 quick chunks: the time to the first byte and the gaps the proxy adds.

use anyhow::Result;
use serde_json::{Value, json};

use crate::requests::one_stream;
use crate::stats::{mean, percentile, round};

/// Time to first byte and mean gap between chunks of a 100-chunk stream, 2 ms apart.
pub async fn streaming(
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
