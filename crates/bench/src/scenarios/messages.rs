//! The cost of serving Anthropic's Messages API (Claude Code's) from a chat-completions target:
//! two proxies of the same configuration on the same mock target, one asked for chat
//! completions (A, plain forwarding) and one for `/v1/messages` (B: each request read as a chat
//! request, each answer and stream written back as Messages), in alternating rounds. Before
//! measuring, B's answers are checked to be the Message and events a client expects.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::proxy::{Launch, Proxy, TOKEN};
use crate::requests::{Api, stream_to_end};
use crate::scenarios::compare::{PairSizes, differences, latency_pair, stream_pair};
use crate::scenarios::masking::TARGET_KEY;
use crate::scenarios::translation::STREAM_EVENTS;
use crate::stats::round3;

/// The targets: proxy CPU that serving Messages may add per request and per event.
pub const TARGET_US_PER_REQUEST: f64 = 20.0;
pub const TARGET_US_PER_EVENT: f64 = 2.0;

pub async fn messages(
    client: &reqwest::Client,
    direct: &str,
    program: &Path,
    sizes: PairSizes,
    streams_per_round: usize,
) -> Result<Value> {
    let launch = Launch::new(program, direct, true).target_api_key(TARGET_KEY);
    let mut proxies = [
        Proxy::start_ready(&launch, client).await?,
        Proxy::start_ready(&launch, client).await?,
    ];
    let result = measure(client, direct, &proxies, sizes, streams_per_round).await;
    for proxy in &mut proxies {
        proxy.stop().await?;
    }
    result
}

async fn measure(
    client: &reqwest::Client,
    direct: &str,
    proxies: &[Proxy; 2],
    sizes: PairSizes,
    streams_per_round: usize,
) -> Result<Value> {
    check(client, &proxies[1].url)
        .await
        .context("the Messages answers are wrong")?;
    let pair = [
        proxies[0].endpoint(Api::Chat),
        proxies[1].endpoint(Api::Messages),
    ];
    let [a, b] = latency_pair(client, direct, pair, sizes).await?;
    let rounds = sizes.latency_rounds;
    let [sa, sb] = stream_pair(
        client,
        direct,
        pair,
        rounds,
        streams_per_round,
        STREAM_EVENTS,
    )
    .await?;
    let answers = differences(
        &b,
        &a,
        &["added_p50_us", "added_p99_us", "cpu_us_per_request"],
    );
    let streams = differences(
        &sb,
        &sa,
        &["added_p50_us", "added_p99_us", "cpu_us_per_stream"],
    );
    let per_request = answers["cpu_us_per_request"].as_f64().unwrap_or(0.0);
    let per_event =
        round3(streams["cpu_us_per_stream"].as_f64().unwrap_or(0.0) / f64::from(STREAM_EVENTS));
    let (request_met, event_met) = (
        per_request <= TARGET_US_PER_REQUEST,
        per_event <= TARGET_US_PER_EVENT,
    );
    Ok(json!({
        "logging": true,
        "rounds": rounds,
        "requests_per_round": sizes.latency_requests,
        "streams_per_round": streams_per_round,
        "events_per_stream": STREAM_EVENTS,
        "answers": {"chat": a, "messages": b, "difference": answers},
        "streams": {"chat": sa, "messages": sb, "difference": streams},
        "cpu_us_per_request_difference": per_request,
        "cpu_us_per_event_difference": per_event,
        "target": {
            "cpu_us_per_request": TARGET_US_PER_REQUEST,
            "cpu_us_per_event": TARGET_US_PER_EVENT,
            "request_met": request_met,
            "event_met": event_met,
            "met": request_met && event_met,
        },
    }))
}

/// A whole answer through `proxied` is a Message with text and the mock's usage, and a stream
/// is Messages events carrying every delta, ending with `message_stop`.
async fn check(client: &reqwest::Client, proxied: &str) -> Result<()> {
    let response = client
        .post(format!("{proxied}/messages"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(Api::Messages.body(false))
        .send()
        .await?;
    let got: Value =
        serde_json::from_slice(&response.bytes().await?).context("the answer is not JSON")?;
    ensure!(
        got["type"] == "message"
            && got["content"][0]["type"] == "text"
            && got["stop_reason"] == "end_turn"
            && got["usage"]["output_tokens"] == 52,
        "not a Message with the mock's text and usage: {got}"
    );
    let (_, body) = stream_to_end(client, proxied, Api::Messages, STREAM_EVENTS).await?;
    let body = String::from_utf8(body).context("the stream is not UTF-8")?;
    let deltas = body.matches("\"type\":\"text_delta\"").count();
    ensure!(
        deltas == STREAM_EVENTS as usize,
        "the stream has {deltas} text deltas, not {STREAM_EVENTS}"
    );
    ensure!(
        body.starts_with("event: message_start"),
        "the stream does not start with message_start"
    );
    Ok(())
}
