//! The cost of serving a client API from a chat-completions target (Anthropic's Messages, Claude
//! Code's; OpenAI's Responses, Codex's): two proxies of the same configuration on the same mock
//! target, one asked for chat completions (A, plain forwarding) and one in the client API (B:
//! each request read as a chat request, each answer and stream written back in that API), in
//! alternating rounds. Before measuring, B's answers are checked to be what a client expects.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::proxy::{Launch, Proxy, TOKEN};
use crate::requests::{Api, stream_to_end};
use crate::scenarios::compare::{Cost, PairSizes, Targets, added_cost};
use crate::scenarios::masking::TARGET_KEY;
use crate::scenarios::translation::STREAM_EVENTS;

/// The issues' targets: proxy CPU that serving either API may add per request and per event.
pub const TARGET_US_PER_REQUEST: f64 = 20.0;
pub const TARGET_US_PER_EVENT: f64 = 2.0;

pub async fn client_api(
    api: Api,
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
    let result = measure(api, client, direct, &proxies, sizes, streams_per_round).await;
    for proxy in &mut proxies {
        proxy.stop().await?;
    }
    result
}

async fn measure(
    api: Api,
    client: &reqwest::Client,
    direct: &str,
    proxies: &[Proxy; 2],
    sizes: PairSizes,
    streams_per_round: usize,
) -> Result<Value> {
    match api {
        Api::Messages => check_messages(client, &proxies[1].url).await,
        Api::Responses => check_responses(client, &proxies[1].url).await,
        Api::Chat => Ok(()),
    }
    .with_context(|| format!("the {} answers are wrong", api.name()))?;
    let pair = [proxies[0].endpoint(Api::Chat), proxies[1].endpoint(api)];
    let cost = Cost {
        names: ["chat", api.name()],
        streams_per_round,
        events: STREAM_EVENTS,
        targets: Targets {
            us_per_request: TARGET_US_PER_REQUEST,
            us_per_event: TARGET_US_PER_EVENT,
        },
    };
    added_cost(client, direct, pair, sizes, cost).await
}

/// A whole answer through `proxied` is a Message with text and the mock's usage, and a stream
/// is Messages events carrying every delta, ending with `message_stop`.
async fn check_messages(client: &reqwest::Client, proxied: &str) -> Result<()> {
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

/// A whole answer through `proxied` is a completed Response with text and the mock's usage, and
/// a stream is Responses events carrying every delta, ending with `response.completed`.
async fn check_responses(client: &reqwest::Client, proxied: &str) -> Result<()> {
    let response = client
        .post(format!("{proxied}/responses"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(Api::Responses.body(false))
        .send()
        .await?;
    let got: Value =
        serde_json::from_slice(&response.bytes().await?).context("the answer is not JSON")?;
    ensure!(
        got["object"] == "response"
            && got["status"] == "completed"
            && got["output"][0]["content"][0]["type"] == "output_text"
            && got["usage"]["output_tokens"] == 52,
        "not a Response with the mock's text and usage: {got}"
    );
    let (_, body) = stream_to_end(client, proxied, Api::Responses, STREAM_EVENTS).await?;
    let body = String::from_utf8(body).context("the stream is not UTF-8")?;
    let deltas = body
        .matches("\"type\":\"response.output_text.delta\"")
        .count();
    ensure!(
        deltas == STREAM_EVENTS as usize,
        "the stream has {deltas} text deltas, not {STREAM_EVENTS}"
    );
    ensure!(
        body.starts_with("event: response.created"),
        "the stream does not start with response.created"
    );
    Ok(())
}
